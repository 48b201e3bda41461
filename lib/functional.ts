// Differentiable ops, like torch.nn.functional: one file per op family under ops/, each holding
// its option checks, the native call and its backward node side by side.
export { add, relu, flatten } from './ops/elementwise';
export { conv2d, type Conv2dOptions } from './ops/conv';
export { batchNorm, batchNormAddRelu, batchNormRelu, type BatchNormOptions } from './ops/batchnorm';
export { maxPool2d, adaptiveAvgPool2d, type MaxPool2dOptions } from './ops/pooling';
export { linear } from './ops/linear';
export { crossEntropy, accuracyCount } from './ops/loss';
export { normalizeImages, type NormalizeImagesOptions } from './ops/images';
