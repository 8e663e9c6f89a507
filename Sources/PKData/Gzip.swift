import CZlib

/// gzip (and zlib) streams through the system zlib.
public enum Gzip {
    /// True when `data` starts with the gzip magic bytes `1f 8b`.
    public static func isGzip(_ data: [UInt8]) -> Bool { data.count >= 2 && data[0] == 0x1F && data[1] == 0x8B }

    /// Inflates a gzip or zlib stream (auto-detected: `inflateInit2` with windowBits 15 + 32).
    /// Concatenated gzip members are decoded one after another. The gzip CRC-32 and length
    /// trailer are checked by zlib. `name` (usually the file path) is named in errors.
    ///
    /// Throws `DataError` for a truncated stream, corrupt data or trailing garbage.
    public static func decompress(_ data: [UInt8], name: String) throws -> [UInt8] {
        guard !data.isEmpty else { throw DataError(file: name, "empty gzip stream") }
        var stream = z_stream()
        var rc = inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw DataError(file: name, "zlib inflateInit2 failed (code \(rc))") }
        defer { inflateEnd(&stream) }

        var output: [UInt8] = []
        // The gzip trailer holds the uncompressed size mod 2³² of the last member: a good hint.
        if isGzip(data), data.count >= 18 {
            let n = data.count
            let hint = Int(data[n - 4]) | Int(data[n - 3]) << 8 | Int(data[n - 2]) << 16 | Int(data[n - 1]) << 24
            output.reserveCapacity(min(hint, 1 << 30))
        }
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)

        try data.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
            stream.avail_in = UInt32(input.count)
            while true {
                let produced: Int = buffer.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress!
                    stream.avail_out = UInt32(chunk)
                    rc = inflate(&stream, Z_NO_FLUSH)
                    return chunk - Int(stream.avail_out)
                }
                output.append(contentsOf: buffer[0..<produced])
                switch rc {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { return }
                    // Another gzip member may follow; anything else is garbage.
                    let rest = UnsafeBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
                    if rest.allSatisfy({ $0 == 0 }) { return }   // zero padding (e.g. tape blocks)
                    guard rest.count >= 2, rest[0] == 0x1F, rest[1] == 0x8B else {
                        throw DataError(file: name, "corrupt gzip: \(rest.count) bytes of trailing garbage after the compressed stream")
                    }
                    rc = inflateReset(&stream)
                    guard rc == Z_OK else { throw DataError(file: name, "zlib inflateReset failed (code \(rc))") }
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    // No progress possible: all input consumed before the end of the stream.
                    if stream.avail_in == 0 {
                        throw DataError(file: name, "truncated gzip: the compressed stream ends early (after \(output.count) bytes of output)")
                    }
                    if produced == 0 {
                        throw DataError(file: name, "corrupt gzip: no progress while inflating")
                    }
                case Z_DATA_ERROR:
                    let why = stream.msg.map { String(cString: $0) } ?? "invalid data"
                    throw DataError(file: name, "corrupt gzip: \(why)")
                case Z_MEM_ERROR:
                    throw DataError(file: name, "out of memory while inflating")
                default:
                    let why = stream.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                    throw DataError(file: name, "corrupt gzip: \(why)")
                }
                if stream.avail_in == 0 && rc == Z_OK && produced < chunk {
                    // All input consumed, output not full, and no stream end: truncated.
                    throw DataError(file: name, "truncated gzip: the compressed stream ends early (after \(output.count) bytes of output)")
                }
            }
        }
        return output
    }

    /// Deflates `data` into a gzip stream (`deflateInit2` with windowBits 15 + 16).
    /// Used to write test fixtures; `level` is zlib's 0–9.
    public static func compress(_ data: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        var rc = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "zlib deflateInit2 failed (code \(rc))")
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, UInt(data.count)))
        var output = [UInt8](repeating: 0, count: bound + 64)
        let written: Int = data.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                stream.avail_in = UInt32(input.count)
                stream.next_out = out.baseAddress!
                stream.avail_out = UInt32(out.count)
                rc = deflate(&stream, Z_FINISH)
                return out.count - Int(stream.avail_out)
            }
        }
        precondition(rc == Z_STREAM_END, "zlib deflate failed (code \(rc))")
        return Array(output[0..<written])
    }
}
