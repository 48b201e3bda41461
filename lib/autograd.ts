// Reverse-mode autograd, micrograd-style: each differentiable op gives its output a Node that
// knows how to turn the output's gradient into its inputs' gradients. Edges point at the input
// Nodes (or, for leaves, at the leaf tensors), never at intermediate tensors, so a user may
// dispose intermediates right after use; a Node keeps its own references (views) to whatever
// it saved for backward and drops them as soon as it has run or nothing can reach it anymore.
import type { Tensor } from './tensor';
import { checkBoolean } from './validate';

export type Edge = { node: Node } | { leaf: Tensor } | null;

export abstract class Node {
  /** Tensors and downstream nodes that can still reach this node. */
  private refs = 0;
  private released = false;
  edges: Edge[] = [];
  saved: Tensor[] = [];

  abstract readonly name: string;

  /** Given d(loss)/d(output), returns d(loss)/d(input) for each edge (null: no gradient). The
   * returned tensors are owned by the caller. */
  abstract apply(gradOutput: Tensor): (Tensor | null)[];

  get isReleased(): boolean {
    return this.released;
  }

  ref(): void {
    this.refs++;
  }

  unref(): void {
    if (--this.refs <= 0) this.release();
  }

  /** Frees saved tensors and lets go of upstream nodes. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.saved) t.dispose();
    this.saved = [];
    const edges = this.edges;
    this.edges = [];
    for (const e of edges) if (e && 'node' in e) e.node.unref();
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording operations for autograd (like `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`Expected a function for fn but received ${fn === null ? 'null' : typeof fn}`);
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Sets whether operations are recorded; returns the previous setting. */
export function setGradEnabled(enabled: boolean): boolean {
  checkBoolean('enabled', enabled);
  const previous = gradEnabled;
  gradEnabled = enabled;
  return previous;
}

/** Whether an op on these inputs must record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Builds the edge from a new node to one of its inputs. */
export function edgeTo(input: Tensor | null | undefined): Edge {
  if (!input || !input.requiresGrad) return null;
  const fn = input.gradFn;
  if (fn) {
    fn.ref();
    return { node: fn };
  }
  return { leaf: input };
}

let finalCallbacks: (() => void)[] | null = null;

/**
 * Runs `callback` once the backward pass now running has finished (PyTorch's
 * `queue_callback`): DistributedDataParallel waits for its last all-reduces there, so `.grad`
 * is final when backward() returns. Only valid while backward runs (from a hook).
 */
export function queueCallback(callback: () => void): void {
  if (finalCallbacks === null) throw new Error('queueCallback: no backward pass is running (call it from a gradient hook)');
  if (typeof callback !== 'function') throw new TypeError(`queueCallback: expected a function for callback, received ${typeof callback}`);
  finalCallbacks.push(callback);
}

/**
 * Runs the backward pass from `root` with d(loss)/d(root) = `gradient` (owned by the engine),
 * accumulating into `.grad` of the leaves, then releases the graph (unless retainGraph).
 */
export function runBackward(
  root: Node,
  gradient: Tensor,
  accumulate: (leaf: Tensor, grad: Tensor) => void,
  add: (a: Tensor, b: Tensor) => Tensor,
  retainGraph = false,
): void {
  // Count, for every reachable node, how many edges from reachable nodes point at it: a node
  // runs once all of its consumers have delivered their share of the gradient. Leaves too: a
  // leaf used twice (add(w, w)) gets the sum once, as torch's AccumulateGrad node, so its
  // post-accumulate-grad hooks run once per backward.
  const pending = new Map<Node, number>();
  const leafPending = new Map<Tensor, number>();
  const stack: Node[] = [root];
  const seen = new Set<Node>([root]);
  while (stack.length) {
    const node = stack.pop()!;
    if (node.isReleased) {
      gradient.dispose();
      throw new Error(
        `backward: the graph of ${node.name} was already freed; it can be run backward only once ` +
          '(pass { retainGraph: true } to the first backward to run it again)',
      );
    }
    for (const e of node.edges) {
      if (e && 'leaf' in e) leafPending.set(e.leaf, (leafPending.get(e.leaf) ?? 0) + 1);
      if (!e || !('node' in e)) continue;
      pending.set(e.node, (pending.get(e.node) ?? 0) + 1);
      if (!seen.has(e.node)) {
        seen.add(e.node);
        stack.push(e.node);
      }
    }
  }

  const grads = new Map<Node, Tensor>([[root, gradient]]);
  const leafGrads = new Map<Tensor, Tensor>();
  const ready: Node[] = [root];
  const visited: Node[] = [];
  withFinalCallbacks(() => {
    try {
      while (ready.length) {
        const node = ready.pop()!;
        visited.push(node);
        const gradOut = grads.get(node)!;
        grads.delete(node);
        let inputGrads: (Tensor | null)[];
        try {
          inputGrads = node.apply(gradOut);
        } finally {
          gradOut.dispose();
        }
        node.edges.forEach((edge, i) => {
          const g = inputGrads[i];
          if (!edge) {
            g?.dispose();
            return;
          }
          if ('leaf' in edge) {
            const leaf = edge.leaf;
            if (g) {
              const sum = leafGrads.get(leaf);
              if (sum) {
                leafGrads.set(leaf, add(sum, g));
                sum.dispose();
                g.dispose();
              } else {
                leafGrads.set(leaf, g);
              }
            }
            const left = leafPending.get(leaf)! - 1;
            leafPending.set(leaf, left);
            const total = leafGrads.get(leaf);
            if (left === 0 && total) {
              leafGrads.delete(leaf);
              accumulate(leaf, total);
            }
            return;
          }
          if (g) {
            const existing = grads.get(edge.node);
            if (existing) {
              grads.set(edge.node, add(existing, g));
              existing.dispose();
              g.dispose();
            } else {
              grads.set(edge.node, g);
            }
          }
          const left = pending.get(edge.node)! - 1;
          pending.set(edge.node, left);
          if (left === 0) {
            if (grads.has(edge.node)) ready.push(edge.node);
            else visited.push(edge.node); // no gradient flows here; still release it below
          }
        });
      }
      // Leaves some of whose edges hang off nodes no gradient reached.
      for (const [leaf, total] of [...leafGrads]) {
        leafGrads.delete(leaf);
        accumulate(leaf, total);
      }
    } finally {
      for (const g of grads.values()) g.dispose();
      for (const g of leafGrads.values()) g.dispose();
      if (!retainGraph) for (const node of visited) node.release();
    }
  });
}

/** Runs a backward pass's `body`, then the callbacks it queued (if it did not throw). */
export function withFinalCallbacks(body: () => void): void {
  const outer = finalCallbacks;
  const callbacks: (() => void)[] = [];
  finalCallbacks = callbacks;
  try {
    body();
  } finally {
    finalCallbacks = outer;
  }
  for (const cb of callbacks) cb();
}
