export { SGD, type SGDOptions, type Optimizer } from './sgd';
export { LRScheduler, LambdaLR, StepLR, CosineAnnealingLR } from './scheduler';
