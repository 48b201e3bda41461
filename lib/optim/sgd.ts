// torch.optim.SGD, as one fused native update over all parameters per step.
import { native, type NativeHandle } from '../native';
import { checkTensor, Tensor } from '../tensor';
import { checkBoolean, checkFinite, checkOptions, invalidRange, invalidType } from '../validate';

export interface SGDOptions {
  /** learning rate (required, > 0) */
  lr: number;
  /** default 0 */
  momentum?: number;
  /** default 0 */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0) */
  weightDecay?: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0) */
  nesterov?: boolean;
  /** maximize the objective (default false) */
  maximize?: boolean;
}

/** Anything with a mutable learning rate a scheduler can drive. */
export interface Optimizer {
  lr: number;
  readonly initialLr: number;
  step(): void;
  zeroGrad(): void;
}

export class SGD implements Optimizer {
  readonly params: readonly Tensor[];
  lr: number;
  readonly initialLr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  readonly maximize: boolean;
  /** momentum buffers, created at the first step that sees each parameter's gradient */
  private readonly buffers = new Map<Tensor, Tensor>();
  stepCount = 0;

  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    if (params === null || typeof params !== 'object' || typeof (params as Iterable<Tensor>)[Symbol.iterator] !== 'function') {
      throw invalidType('params', 'an iterable of Tensors (e.g. model.parameters())', params);
    }
    const list = [...params];
    if (!list.length) throw invalidRange('params', 'a non-empty list of Tensors', list);
    list.forEach((p, i) => {
      checkTensor(`params[${i}]`, p);
      if (!p.requiresGrad) throw invalidRange(`params[${i}]`, 'a Tensor that requires grad', p.toString());
    });
    if (new Set(list).size !== list.length) throw invalidRange('params', 'each parameter once', 'a parameter listed twice');
    const o = checkOptions<SGDOptions>('options', options, ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov', 'maximize']) as SGDOptions;
    if (o.lr === undefined) throw invalidType('options.lr', 'a learning rate > 0', undefined);
    // Each hyperparameter is checked here, finite and in range, so step() never meets a bad one.
    this.lr = checkFinite('options.lr', o.lr, 0);
    this.initialLr = this.lr;
    this.momentum = checkFinite('options.momentum', o.momentum ?? 0, 0);
    this.dampening = checkFinite('options.dampening', o.dampening ?? 0);
    this.weightDecay = checkFinite('options.weightDecay', o.weightDecay ?? 0, 0);
    this.nesterov = checkBoolean('options.nesterov', o.nesterov ?? false);
    this.maximize = checkBoolean('options.maximize', o.maximize ?? false);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw invalidRange('options.nesterov', 'false unless momentum > 0 and dampening = 0', true);
    }
    this.params = list;
  }

  /** Clears the gradients (frees them, like set_to_none=True). */
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** Updates every parameter that has a gradient, in one native call. */
  step(): void {
    // lr is mutable (schedulers set it), so it is checked again here.
    checkFinite('lr', this.lr, 0);
    const params: NativeHandle[] = [];
    const grads: NativeHandle[] = [];
    const bufs: (NativeHandle | null)[] = [];
    const init: boolean[] = [];
    for (const p of this.params) {
      const g = p.grad;
      if (!g || g.isDisposed) continue;
      if (g.device !== p.device || g.dtype !== p.dtype || g.memoryFormat !== p.memoryFormat) {
        throw invalidRange('grad', `a gradient on ${p.device} as ${p.dtype} (${p.memoryFormat})`,
          `${g.dtype} on ${g.device} (${g.memoryFormat})`);
      }
      params.push(p.handle);
      grads.push(g.handle);
      if (this.momentum !== 0) {
        let buf = this.buffers.get(p);
        const fresh = !buf || buf.device !== p.device || buf.dtype !== p.dtype || buf.memoryFormat !== p.memoryFormat;
        if (fresh) {
          buf?.dispose();
          // Same memory format as the parameter: the update is elementwise over raw memory.
          buf = Tensor._fromHandle(native.to(p.handle, p.device, p.dtype, p.memoryFormat === 'channelsLast'));
          this.buffers.set(p, buf);
        }
        bufs.push(buf!.handle);
        init.push(fresh);
      } else {
        bufs.push(null);
        init.push(false);
      }
    }
    if (params.length) {
      native.sgdStep(params, grads, bufs, init, {
        lr: this.lr, momentum: this.momentum, dampening: this.dampening, weightDecay: this.weightDecay,
        nesterov: this.nesterov, maximize: this.maximize,
      });
    }
    this.stepCount++;
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}
