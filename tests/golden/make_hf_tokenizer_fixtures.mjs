// Writes tests/golden/hf_tokenizer/fixtures.json and theirs.tokenizer.json, which
// tests/test_hf_tokenizer.cpp checks mixgrad's tokenizer.json reader and writer against, using
// Hugging Face's pure-JavaScript tokenizers (npm @huggingface/tokenizers) as the reference.
//
//   mkdir /tmp/hfjs && (cd /tmp/hfjs && npm init -y && npm install @huggingface/tokenizers@0.2.0)
//   NODE_PATH=/tmp/hfjs/node_modules node tests/golden/make_hf_tokenizer_fixtures.mjs /tmp/hfjs
//
// Inputs (committed, our own text): hf_tokenizer/train.txt, and hf_tokenizer/ours.tokenizer.json,
// which test_hf_tokenizer writes from a BpeTokenizer trained on train.txt (it fails when the
// committed file differs from what the current code writes).
//
// theirs.tokenizer.json is a byte-level BPE laid out the way the HF library's BpeTrainer writes
// one (special tokens first, then the 256-character byte alphabet in character order, then one
// token per merge; merges in the ["a", "b"] array form; ByteLevel pre-tokenizer with GPT-2's
// regex), trained here by a plain most-frequent-pair loop on train.txt, because the JavaScript
// library has no trainer. Both tokenizers then encode TEXTS with the HF library; the ids go to
// fixtures.json.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const here = path.join(path.dirname(new URL(import.meta.url).pathname), "hf_tokenizer");
const modules = process.argv[2] ? path.join(process.argv[2], "node_modules") : undefined;
const require = createRequire(modules ? path.join(modules, "x.js") : import.meta.url);
const pkgPath = require.resolve("@huggingface/tokenizers");
const mod = await import(pathToFileURL(pkgPath).href);
const Tokenizer = mod.Tokenizer ?? mod.default.Tokenizer;  // require.resolve may give the CommonJS build
const version = JSON.parse(fs.readFileSync(path.join(path.dirname(pkgPath), "..", "package.json"), "utf8")).version;

const TEXTS = [
  "The mixer reads every token.",
  "don't, it's, we're, they'll, I'd, you've -- 'S 'LL",
  "two  spaces,   three, and\ttabs\t\tbefore words\n\nnew lines\r\n",
  "  leading spaces and trailing ones   ",
  "\t indented after a tab\n    four spaces",
  "numbers 2048, 3.14159 and 65536tokens",
  "naïve café: crème brûlée, 日本語のテキスト",
  "“curly quotes” — an em dash… and ½ or x² (non-ASCII digits)",
  "emoji 🙂🙂 and symbols ©®",
  "no\u00a0break space, thin\u2009space",
  "text<|endoftext|>more text<|pad|><|endoftext|>",
  "!!!???... ---___ @@@###",
  "",
];

const train = fs.readFileSync(path.join(here, "train.txt"), "utf8");

// GPT-2's byte <-> unicode table.
const byteChar = [];
{
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    byteChar.push(String.fromCodePoint(printable ? b : 256 + n++));
  }
}
const byteLevel = (s) => Array.from(new TextEncoder().encode(s), (b) => byteChar[b]).join("");
const GPT2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function trainTheirs(text, numMerges) {
  const counts = new Map();
  for (const chunk of text.match(GPT2) ?? []) {
    const w = byteLevel(chunk);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const words = [...counts].map(([w, c]) => ({ syms: Array.from(w), count: c }));
  const specials = ["<|endoftext|>", "<|pad|>"];
  const vocab = {};
  specials.forEach((s, i) => (vocab[s] = i));
  [...byteChar].sort().forEach((c) => (vocab[c] = Object.keys(vocab).length));
  const merges = [];
  for (let m = 0; m < numMerges; ++m) {
    const pairs = new Map();
    for (const { syms, count } of words)
      for (let i = 0; i + 1 < syms.length; ++i) {
        const k = JSON.stringify([syms[i], syms[i + 1]]);
        pairs.set(k, (pairs.get(k) ?? 0) + count);
      }
    let best = null;
    for (const [k, c] of pairs) if (!best || c > best[1] || (c === best[1] && k < best[0])) best = [k, c];
    if (!best) break;
    const [a, b] = JSON.parse(best[0]);
    if (vocab[a + b] !== undefined) continue;  // keep one token per merge, as mixgrad needs
    merges.push([a, b]);
    vocab[a + b] = Object.keys(vocab).length;
    for (const w of words) {
      const out = [];
      for (let i = 0; i < w.syms.length; ++i) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(a + b);
          ++i;
        } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  const byteLevelCfg = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => ({
      id: i, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevelCfg,
    post_processor: byteLevelCfg,
    decoder: byteLevelCfg,
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

const theirs = trainTheirs(train, 48);
fs.writeFileSync(path.join(here, "theirs.tokenizer.json"), JSON.stringify(theirs) + "\n");
const ours = JSON.parse(fs.readFileSync(path.join(here, "ours.tokenizer.json"), "utf8"));

const encodeAll = (json) => {
  const tok = new Tokenizer(json, {});
  return TEXTS.map((t) => {
    const ids = tok.encode(t, { add_special_tokens: false }).ids;
    if (ids.length && tok.decode(ids) !== t) throw new Error(`decode(encode(${JSON.stringify(t)})) differs`);
    return ids;
  });
};
const fixtures = {
  generator: "tests/golden/make_hf_tokenizer_fixtures.mjs",
  tokenizers_js_version: version,
  texts: TEXTS,
  theirs_ids: encodeAll(theirs),
  ours_ids: encodeAll(ours),
};
fs.writeFileSync(path.join(here, "fixtures.json"), JSON.stringify(fixtures) + "\n");
console.log(`wrote fixtures.json (${TEXTS.length} texts) and theirs.tokenizer.json with @huggingface/tokenizers ${version}`);
