// The seed, d2l's ResidualBlock, in Node: the two cases of the notebook, on the default device.
import { backendInfo, defaultDevice, manualSeed, noGrad, ResidualBlock, Tensor } from 'cudnn-resblock';

manualSeed(0);
const device = defaultDevice();
const info = backendInfo();
console.log(device === 'cuda'
  ? `Backend: cuda (${info.cuda.devices[0]?.name ?? 'GPU'})`
  : `Backend: cpu (${info.cpu.threads} threads, ${info.cpu.simd})` +
    (info.cuda.available ? '' : `; CUDA not used: ${info.cuda.reason}`));

// A sample input: batch 1, 3 channels, 224x224.
using X = Tensor.randn([1, 3, 224, 224]);

noGrad(() => {
  // A residual block that maintains the input's dimensions.
  using blk = new ResidualBlock(3, 3);
  using Y1 = blk.forward(X);
  console.log(`Output shape with regular residual block: [${Y1.shape.join(', ')}]`);

  // A residual block that changes channels and halves the spatial dimensions.
  using blk2 = new ResidualBlock(3, 6, { use1x1conv: true, strides: 2 });
  using Y2 = blk2.forward(X);
  console.log(`Output shape with strided residual block: [${Y2.shape.join(', ')}]`);
});
