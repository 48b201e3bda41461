export * from './fashion-mnist';
export * from './dataloader';
export * from './image-array';
export * from './cifar';
export * as transforms from './transforms';
