#!/usr/bin/env node
// Builds the CUDA/cuDNN backend (libcrb_cuda.so) with CMake into build-cuda/ and copies it to
// build/Release/, next to the addon, where native/core/cuda_loader.cc looks for it.
//
//   npm run build:cuda
//   CUDNN_ROOT=/path/to/cudnn npm run build:cuda         (holds include/cudnn.h, lib/libcudnn.so.9)
//   CUDNN_INCLUDE_DIR=... CUDNN_LIB_DIR=... npm run build:cuda
//   CRB_CUDA_ARCHITECTURES="90-real" npm run build:cuda  (faster build for one GPU kind)
//
// nvcc: $CUDACXX, then PATH, $CUDA_HOME/bin, $CUDA_PATH/bin, /usr/local/cuda/bin.
// cuDNN: the variables above, else a pip-installed nvidia-cudnn-cu13 (python3 -c "import
// nvidia.cudnn"), else the system include/library directories.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = path.join(root, 'build-cuda');
const outDir = path.join(root, 'build', 'Release');

function die(message) {
  console.error(`build-cuda: ${message}`);
  process.exit(1);
}

function isFile(p) {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && isFile(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

function findNvcc() {
  const tried = [];
  const candidates = [];
  if (process.env.CUDACXX) candidates.push([process.env.CUDACXX, 'CUDACXX']);
  const fromPath = onPath('nvcc');
  if (fromPath) candidates.push([fromPath, 'PATH']);
  for (const v of ['CUDA_HOME', 'CUDA_PATH']) {
    if (process.env[v]) candidates.push([path.join(process.env[v], 'bin', 'nvcc'), v]);
  }
  candidates.push(['/usr/local/cuda/bin/nvcc', 'default location']);
  for (const [p, via] of candidates) {
    tried.push(p);
    if (isFile(p)) return { nvcc: p, via };
  }
  die(`nvcc (the CUDA compiler, CUDA 12.x or 13.x) not found; tried ${tried.join(', ')}.\n` +
      '  Install the CUDA toolkit, or put nvcc on PATH, or set CUDA_HOME.');
}

function cudnnAt(includeDir, libDir) {
  return isFile(path.join(includeDir, 'cudnn.h')) && isFile(path.join(libDir, 'libcudnn.so.9'));
}

function pipCudnnDir() {
  const r = spawnSync('python3', ['-c', 'import nvidia.cudnn as m; print(list(m.__path__)[0])'], {
    encoding: 'utf8',
  });
  if (r.status !== 0 || !r.stdout) return null;
  return r.stdout.trim() || null;
}

function findCudnn() {
  const env = process.env;
  if (env.CUDNN_INCLUDE_DIR || env.CUDNN_LIB_DIR) {
    const inc = env.CUDNN_INCLUDE_DIR || (env.CUDNN_ROOT && path.join(env.CUDNN_ROOT, 'include'));
    const lib = env.CUDNN_LIB_DIR || (env.CUDNN_ROOT && path.join(env.CUDNN_ROOT, 'lib'));
    if (!inc || !lib) die('set both CUDNN_INCLUDE_DIR and CUDNN_LIB_DIR (or CUDNN_ROOT).');
    if (!cudnnAt(inc, lib)) {
      die(`CUDNN_INCLUDE_DIR/CUDNN_LIB_DIR do not hold cuDNN 9: expected ${path.join(inc, 'cudnn.h')} and ` +
          `${path.join(lib, 'libcudnn.so.9')}.`);
    }
    return { include: inc, lib, via: 'CUDNN_INCLUDE_DIR/CUDNN_LIB_DIR' };
  }
  if (env.CUDNN_ROOT) {
    for (const libName of ['lib', 'lib64']) {
      const inc = path.join(env.CUDNN_ROOT, 'include');
      const lib = path.join(env.CUDNN_ROOT, libName);
      if (cudnnAt(inc, lib)) return { include: inc, lib, via: 'CUDNN_ROOT' };
    }
    die(`CUDNN_ROOT=${env.CUDNN_ROOT} does not hold include/cudnn.h and lib/libcudnn.so.9 (cuDNN 9).`);
  }
  const pip = pipCudnnDir();
  if (pip && cudnnAt(path.join(pip, 'include'), path.join(pip, 'lib'))) {
    return { include: path.join(pip, 'include'), lib: path.join(pip, 'lib'), via: 'pip package nvidia-cudnn-cu13' };
  }
  const systemPairs = [
    ['/usr/include', '/usr/lib/x86_64-linux-gnu'],
    ['/usr/include/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'],
    ['/usr/local/cuda/include', '/usr/local/cuda/lib64'],
    ['/usr/include', '/usr/lib64'],
  ];
  for (const [inc, lib] of systemPairs) {
    if (cudnnAt(inc, lib)) return { include: inc, lib, via: 'system paths' };
  }
  die('cuDNN 9 not found. Either\n' +
      '  - set CUDNN_ROOT to a directory holding include/cudnn.h and lib/libcudnn.so.9, or\n' +
      '  - set CUDNN_INCLUDE_DIR and CUDNN_LIB_DIR, or\n' +
      '  - pip install nvidia-cudnn-cu13 (found through python3 -c "import nvidia.cudnn"), or\n' +
      '  - install the system cuDNN 9 package (cudnn.h and libcudnn.so.9 in the usual directories).');
}

function run(cmd, args) {
  console.log(`build-cuda: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.error) die(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} failed with exit code ${r.status} (see its output above).`);
}

const cmake = onPath('cmake');
if (!cmake) die('cmake (3.25 or newer) not found on PATH.');
const { nvcc, via: nvccVia } = findNvcc();
let nvccVersion = '';
try {
  nvccVersion = /release ([0-9.]+)/.exec(execFileSync(nvcc, ['--version'], { encoding: 'utf8' }))?.[1] ?? '';
} catch (e) {
  die(`${nvcc} --version failed: ${e.message}`);
}
const cudnn = findCudnn();
const archs = process.env.CRB_CUDA_ARCHITECTURES;

console.log(`build-cuda: nvcc   ${nvcc} (CUDA ${nvccVersion || '?'}, via ${nvccVia})`);
console.log(`build-cuda: cuDNN  ${cudnn.include} + ${cudnn.lib} (via ${cudnn.via})`);
if (archs) console.log(`build-cuda: architectures ${archs} (CRB_CUDA_ARCHITECTURES)`);

const configure = [
  '-S', root, '-B', buildDir,
  '-DCMAKE_BUILD_TYPE=Release',
  `-DCMAKE_CUDA_COMPILER=${nvcc}`,
  `-DCUDNN_INCLUDE_DIR=${cudnn.include}`,
  `-DCUDNN_LIB_DIR=${cudnn.lib}`,
  `-DCUDNN_LIBRARY=${path.join(cudnn.lib, 'libcudnn.so.9')}`,
];
// Without the variable, drop a value cached by an earlier build so CMakeLists.txt's default holds.
configure.push(archs ? `-DCRB_CUDA_ARCHITECTURES=${archs}` : '-UCRB_CUDA_ARCHITECTURES');
run(cmake, configure);
const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
run(cmake, ['--build', buildDir, '--parallel', jobs]);

const built = path.join(buildDir, 'libcrb_cuda.so');
if (!isFile(built)) die(`the build finished but ${built} is missing.`);
fs.mkdirSync(outDir, { recursive: true });
const dest = path.join(outDir, 'libcrb_cuda.so');
fs.copyFileSync(built, dest);
console.log(`build-cuda: wrote ${path.relative(root, dest)}`);
console.log('build-cuda: at run time libcudnn.so.9 must be loadable: put its directory in CUDNN_LIB_DIR, or ' +
            'install it system-wide or with pip (nvidia-cudnn-cu13), or copy it next to libcrb_cuda.so.');
