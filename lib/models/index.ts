// torchvision-style model zoo (architectures only; no pretrained weights are downloaded).
export { ResNet, BasicBlock, Bottleneck, resnet18, resnet34, resnet50, type ResNetArgs } from './resnet';
