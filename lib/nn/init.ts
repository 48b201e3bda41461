// PyTorch's default initializers, drawn from the seedable generator (manualSeed).
import { rand } from '../creation';
import type { Device } from '../device';
import type { Tensor } from '../tensor';

/** kaiming_uniform_(a = sqrt(5)) as nn.Conv2d / nn.Linear use: U(-b, b), b = 1/sqrt(fanIn). */
export function kaimingUniformDefault(shape: number[], fanIn: number, device?: Device): Tensor {
  const gain = Math.sqrt(2 / (1 + 5));
  const bound = gain * Math.sqrt(3 / fanIn);
  return rand(shape, { low: -bound, high: bound, device });
}

/** The bias init of nn.Conv2d / nn.Linear: U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export function biasUniform(shape: number[], fanIn: number, device?: Device): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return rand(shape, { low: -bound, high: bound, device });
}
