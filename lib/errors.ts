// Typed errors for backend failures. Native code throws instances of these classes (they are
// handed to the addon at load), so `instanceof` works and `op`/`status` say what failed.

export interface BackendErrorFields {
  /** the op that failed, e.g. "conv2d_forward" */
  op?: string;
  /** the backend's status string, e.g. "CUDNN_STATUS_BAD_PARAM" */
  status?: string;
  /** the backend's status name, e.g. "CRB_ERR_OOM" */
  code?: string;
  device?: string;
}

export class BackendError extends Error {
  op?: string;
  status?: string;
  code?: string;
  device?: string;
  constructor(message: string, fields: BackendErrorFields = {}) {
    super(message);
    this.name = new.target.name;
    Object.assign(this, fields);
  }
}

/** A CUDA runtime call failed. */
export class CudaError extends BackendError {}
/** A cuDNN call failed. */
export class CudnnError extends BackendError {}
/** Device memory ran out; the backend is still usable (free memory or use a smaller batch). */
export class OutOfMemoryError extends BackendError {}

/**
 * A checkpoint or safetensors file that cannot be read, is malformed, or does not fit the model.
 * `file` names it; nothing was loaded.
 */
export class CheckpointError extends Error {
  file?: string;
  constructor(message: string, fields: { file?: string } = {}) {
    super(message);
    this.name = new.target.name;
    Object.assign(this, fields);
  }
}

/** A tensor used after dispose(): a TypeError, as every bad argument is. */
export class DisposedTensorError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface DistErrorFields {
  /** what failed: "rendezvous", "allReduce", "broadcast", "allGather", "barrier" */
  op?: string;
  /** this process's rank */
  rank?: number;
  worldSize?: number;
  /** the rank gloo blamed (a peer that left, or one that never joined) */
  peer?: number;
  /** CRB_GLOO_ERR_TIMEOUT | CRB_GLOO_ERR_IO | CRB_GLOO_ERR_DESTROYED | CRB_GLOO_ERR_INVALID | CRB_GLOO_ERR_INTERNAL */
  code?: string;
}

/**
 * A rendezvous or collective of a process group failed: a rank never joined, a peer left, the
 * group's timeout passed, or the group was destroyed. After a failed collective the group is
 * unusable (later works fail with this error too).
 */
export class DistError extends Error {
  op?: string;
  rank?: number;
  worldSize?: number;
  peer?: number;
  code?: string;
  constructor(message: string, fields: DistErrorFields = {}) {
    super(message);
    this.name = new.target.name;
    Object.assign(this, fields);
  }
}
