// cudnn-resblock: ResNet-style networks in Node.js on native tensors (CPU always, CUDA/cuDNN
// when usable), with PyTorch's names and numerics.
export { Tensor, type DType, type DeviceType, type MemoryFormat, type ToOptions, type TypedArray, type NestedArray } from './tensor';
export { tensor, empty, zeros, ones, full, zerosLike, onesLike, randn, rand, manualSeed, type CreateOptions } from './creation';
export { availableDevices, defaultDevice, setDefaultDevice, type Device } from './device';
export { noGrad, isGradEnabled, setGradEnabled, queueCallback, Node } from './autograd';
export type { RemovableHandle } from './tensor';
export { autocast, isAutocastEnabled, GradScaler, type AutocastOptions, type AutocastDtype, type GradScalerOptions } from './amp';
export { backendInfo, capabilities, cuda, cudnn, setNumThreads, getNumThreads, cpuMemoryStats, type BackendInfo, type BackendCapabilities, type MemoryStats } from './device';
export { BackendError, CudaError, CudnnError, OutOfMemoryError, CheckpointError, DisposedTensorError, DistError } from './errors';
export * as functional from './functional';
export { crossEntropy, accuracyCount, normalizeImages } from './functional';
export * as nn from './nn';
export {
  Module,
  Conv2d,
  BatchNorm2d,
  ReLU,
  MaxPool2d,
  AdaptiveAvgPool2d,
  Linear,
  Flatten,
  Sequential,
  ResidualBlock,
  resnet18,
  type StateDict,
  type ResidualBlockArgs,
} from './nn';
export * as models from './models';
export { resnet34, resnet50 } from './models';
export * as optim from './optim';
export { SGD, StepLR, LambdaLR, CosineAnnealingLR, type SGDOptions } from './optim';
export * as distributed from './distributed';
export { DistributedDataParallel, DistributedSampler, type DistributedDataParallelOptions, type DistributedSamplerOptions } from './distributed';
export * as data from './data';
export {
  loadFashionMnist, DataLoader, FASHION_MNIST_CLASSES, type Batch, type DataLoaderOptions, type FashionMnist,
  ImageArrayDataset, loadCifar10, loadCifar100, CIFAR10_CLASSES, CIFAR100_FINE_CLASSES, CIFAR100_COARSE_CLASSES,
  Cifar10, Cifar100, ImageFolder, ImageDecodeError, IMAGE_EXTENSIONS,
  type ImageArrayDatasetInit, type ImageLayout, type Cifar, type LoadCifar100Options, type CifarOptions,
  type ImageFolderOptions, type EpochBatches, type LoaderDataset, transforms,
} from './data';
export * as io from './io';
export { save, load } from './io';
