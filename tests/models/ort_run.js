// Runs an ONNX model with ONNX Runtime (npm's onnxruntime-node) on .npy inputs, to cross-check the
// expected outputs of the model tests. Not needed to build or test kiln.
//
//   NODE_PATH=/path/to/node_modules node ort_run.js MODEL.onnx OUT_DIR NAME=FILE.npy ...
//
// Writes OUT_DIR/output_<i>.npy in graph-output order and OUT_DIR/outputs.json (name, dtype, shape, file).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

// numpy descr <-> ORT type and typed array.
const TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
  '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array], '|i1': ['int8', Int8Array],
  '|u1': ['uint8', Uint8Array], '<u2': ['uint16', Uint16Array], '<u4': ['uint32', Uint32Array],
  '<u8': ['uint64', BigUint64Array], '|b1': ['bool', Uint8Array],
};

function loadNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: fortran order is not supported`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s)
    .map(Number);
  if (!TYPES[descr]) throw new Error(`${file}: unsupported dtype ${descr}`);
  const [type, Arr] = TYPES[descr];
  const offset = start + headerLen;
  const bytes = buf.subarray(offset);
  const data = new Arr(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return new ort.Tensor(type, type === 'bool' ? Uint8Array.from(data) : data, shape);
}

function saveNpy(file, tensor) {
  const descr = Object.keys(TYPES).find((k) => TYPES[k][0] === tensor.type);
  if (!descr) throw new Error(`output type ${tensor.type} cannot be written as .npy`);
  const dims = tensor.dims.length === 1 ? `${tensor.dims[0]},` : tensor.dims.join(', ');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // data starts 64-byte aligned
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
  return descr;
}

async function main() {
  const [model, outDir, ...bindings] = process.argv.slice(2);
  if (!model || !outDir) throw new Error('usage: ort_run.js MODEL.onnx OUT_DIR NAME=FILE.npy ...');
  const feeds = {};
  for (const b of bindings) {
    const eq = b.lastIndexOf('=');
    feeds[b.slice(0, eq)] = loadNpy(b.slice(eq + 1));
  }
  const session = await ort.InferenceSession.create(model);
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  const summary = session.outputNames.map((name, i) => {
    const file = `output_${i}.npy`;
    const t = results[name];
    saveNpy(path.join(outDir, file), t);
    return { name, dtype: t.type, shape: t.dims, file };
  });
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify(summary, null, 1) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_run: error: ${e.message}\n`);
  process.exit(1);
});
