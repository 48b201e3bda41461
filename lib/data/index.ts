export * from './fashion-mnist';
export * from './dataloader';
