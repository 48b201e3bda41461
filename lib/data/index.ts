export * from './fashion-mnist';
export * from './dataloader';
export * from './image-array';
export * from './cifar';
export * from './image-folder';
export * as transforms from './transforms';
