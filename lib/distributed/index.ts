export * from './process-group';
export * from './ddp';
export * from './sampler';
