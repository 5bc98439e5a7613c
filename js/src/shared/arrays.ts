/**
 * Decoding the binary array messages the kernel sends (`ArrayMessage`: raw bytes with dtype and
 * shape beside them) into typed arrays. The page's side of the Python payload encoding.
 */

/** The bytes of a binary trait value, whatever the transport made of them. */
export function bytesOf(data: DataView | ArrayBuffer | Uint8Array): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A float32 view of an array message (copied when the bytes are not 4-byte aligned). */
export function float32Of(message: { data: DataView | ArrayBuffer | Uint8Array }): Float32Array {
  const bytes = bytesOf(message.data);
  if (bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return new Float32Array(bytes.slice().buffer);
}
