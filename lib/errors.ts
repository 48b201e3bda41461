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
