import assert from "node:assert/strict";
import { sha256Hex } from "./sha256.ts";

async function subtleHex(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("sha256Hex: the FIPS 180-4 examples", () => {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

Deno.test("sha256Hex agrees with WebCrypto on every length around the block boundaries, and on UTF-8", async () => {
  for (let n = 0; n < 200; n++) {
    const text = "x".repeat(n);
    assert.equal(sha256Hex(text), await subtleHex(text), `length ${n}`);
  }
  const path = "/run/containerd/containerd.sock/k8s.io/pod-ü-😀";
  assert.equal(sha256Hex(path), await subtleHex(path));
});
