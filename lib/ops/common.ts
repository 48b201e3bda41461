// What every op file shares: the checks on tensor arguments that are not shape rules, and the
// handles a backward node keeps (views, so the user may dispose the originals) or returns.
import { native, type NativeHandle } from '../native';
import { isFloatDtype, Tensor } from '../tensor';
import { invalidRange, invalidType } from '../validate';

export function checkFloat(name: string, t: Tensor): void {
  if (!isFloatDtype(t.dtype)) throw invalidType(name, 'a floating-point tensor', `a ${t.dtype} tensor`);
}

export function checkSameDeviceDtype(name: string, reference: Tensor, t: Tensor): void {
  if (t.device !== reference.device) {
    throw invalidRange(name, `a tensor on ${reference.device} (same device as the input)`, `a tensor on ${t.device}`);
  }
  if (t.dtype !== reference.dtype) {
    throw invalidType(name, `a ${reference.dtype} tensor (same dtype as the input)`, `a ${t.dtype} tensor`);
  }
}

/** A tensor of its own on the storage of `h` (a saved output, a gradient passed on). */
export function view(h: NativeHandle): Tensor {
  return Tensor._fromHandle(native.view(h, h.shape.slice()));
}

/** What a node saves of an input: a view, so disposing the input frees nothing backward needs. */
export function keep(t: Tensor): Tensor {
  return view(t.handle);
}

export function wrap(h: NativeHandle | null): Tensor | null {
  return h ? Tensor._fromHandle(h) : null;
}

/** The gradients of a node whose native backward computes them all: those without an edge are freed. */
export function dropUnneeded(edges: readonly unknown[], handles: NativeHandle[]): (Tensor | null)[] {
  return handles.map((h, i) => {
    if (edges[i]) return Tensor._fromHandle(h);
    h.dispose();
    return null;
  });
}
