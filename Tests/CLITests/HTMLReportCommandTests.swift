import Foundation
import Testing
import PKData   // Gzip: inflates the screenshots' PNG data

/// `pathkernel report --format html` on two presets, moons-mlp (2-D points, plain GD) and
/// fmnist-adamw (Fashion-MNIST images, AdamW with clipping), shortened to a few steps, checked
/// as markup and as a person sees it in headless Chromium.
@Suite("HTML report command")
struct HTMLReportCommandTests {
    struct Page: Sendable {
        var name: String
        var path: String
        var html: String
        var images: Bool
        /// Written with `--spectrum`.
        var spectrum: Bool
        /// The figures it must have.
        var figures: [String]
    }

    /// The sections both pages have, and their figures (path-km along training is computed for
    /// plain (S)GD only, Docs/path-kernel.md §7).
    static let sections = ["run", "reconstruction", "kernel-machines", "dynamics", "diagnostics", "attribution", "summary"]
    static let figures = ["fig-kernel-machines", "fig-kernel-distance", "fig-alignment", "fig-weight-travel", "fig-loss", "fig-learning-rate"]

    /// Both pages, trained, analyzed and written once for the suite.
    static let pages: Result<[Page], Error> = Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pk-html-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var pages: [Page] = []
        for (name, source, images) in [("moons", ["--preset", "moons-mlp", "--steps", "30"], false),
                                       ("fmnist", ["--preset", "fmnist-adamw", "--steps", "10"], true)] {
            let spectrum = name == "moons"
            let expected = HTMLReportCommandTests.figures + (name == "moons" ? ["fig-path-km-error"] : []) + (spectrum ? ["fig-spectrum"] : [])
            let trace = dir.appendingPathComponent("\(name).sqlite").path
            let html = dir.appendingPathComponent("\(name).html").path
            for args in [["train"] + source + ["--out", trace, "--quiet", "--force"], ["analyze", trace, "--quiet"],
                         ["report", trace, "--format", "html", "--out", html] + (spectrum ? ["--spectrum"] : [])] {
                let r = try CLI.run(args, timeout: 900)
                guard r.status == 0 else { throw CLIFailure("pathkernel \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)") }
            }
            pages.append(Page(name: name, path: html, html: try String(contentsOfFile: html, encoding: .utf8), images: images, spectrum: spectrum, figures: expected))
        }
        return pages
    }

    struct CLIFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    @Test func pagesHaveTheirSectionsAndNothingExternal() throws {
        for page in try Self.pages.get() {
            let html = page.html
            for id in Self.sections { #expect(html.contains("<section id=\"\(id)\">"), "\(page.name): section \(id)") }
            for id in page.figures { #expect(html.contains("<figure id=\"\(id)\" class=\"fig\"><svg"), "\(page.name): figure \(id)") }
            #expect(html.components(separatedBy: "<figure id=\"fig-").count - 1 == page.figures.count, "\(page.name): other figures than \(page.figures)")
            // Spectra only when asked for: step 0 and the last step, each n eigenvalues.
            #expect(html.contains("<section id=\"spectrum\">") == page.spectrum && html.contains("<figure id=\"fig-spectrum\"") == page.spectrum, "\(page.name)")
            if page.spectrum { #expect(html.contains("NTK at step 0") && html.contains("NTK at step 30"), "\(page.name)") }
            // Images only where the data has an input shape: a query and its contributors.
            let thumbs = html.components(separatedBy: "<figure class=\"thumb").count - 1
            let queries = html.components(separatedBy: "<figure class=\"thumb q\"").count - 1
            if page.images {
                #expect(queries >= 1 && thumbs > queries, "\(page.name): \(queries) query images, \(thumbs) in all")
                #expect(!html.contains("<th>pushed up (sum"), "\(page.name): every contributor has its image")
            } else {
                #expect(thumbs == 0 && html.contains("<th>pushed up (sum ") && html.contains("contribution</th>"), "\(page.name): a table, no images")
            }
            #expect(Self.balanceProblem(html) == nil, "\(page.name): \(Self.balanceProblem(html) ?? "")")
            let stripped = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
            for needle in ["http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link"] {
                #expect(!stripped.contains(needle), "\(page.name): \(needle)")
            }
            // Same trace, same bytes.
            let again = try CLI.run(["report", page.path.replacingOccurrences(of: ".html", with: ".sqlite"), "--format", "html"] + (page.spectrum ? ["--spectrum"] : []))
            #expect(again.status == 0 && again.stdout == html, "\(page.name): a second report differs")
        }
    }

    /// A trace whose data rows are damaged still gets its page from the stored analysis: no
    /// images and no spectrum, each said in a note and on standard error.
    @Test func damagedDataLeavesImagesOut() throws {
        let page = try #require(try Self.pages.get().first { $0.images })
        let copy = page.path.replacingOccurrences(of: ".html", with: "-damaged.sqlite")
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: page.path.replacingOccurrences(of: ".html", with: ".sqlite"), toPath: copy)
        try CLI.sqlite(copy, "UPDATE data SET checksum = checksum + 1 WHERE split = 'train' AND role = 'x'")
        let r = try CLI.run(["report", copy, "--format", "html", "--spectrum"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: the data could not be read") && r.stderr.contains("warning: no NTK spectrum at step 0"), "\(r.stderr)")
        #expect(!r.stdout.contains("<figure class=\"thumb") && r.stdout.contains("<th>pushed up (sum "))
        #expect(r.stdout.contains("<li>HTML report: the data could not be read") && !r.stdout.contains("id=\"spectrum\""))
        #expect(r.stdout.contains("<figure id=\"fig-loss\""))
    }

    /// Headless Chromium renders both pages: the screenshots are not blank and show the charts'
    /// colours, and the DOM it parsed holds every section, figure and SVG of the source.
    @Test(.enabled(if: Chromium.path != nil, "Chromium not installed (Debian: apt-get install chromium): the HTML report is not rendered"))
    func chromiumRendersThePages() throws {
        let chromium = try #require(Chromium.path)
        for page in try Self.pages.get() {
            let png = page.path.replacingOccurrences(of: ".html", with: ".png")
            let shot = try CLI.execute(chromium, Chromium.flags + ["--screenshot=\(png)", "--window-size=1280,2400", "file://\(page.path)"],
                                       timeout: 180, environment: ["HOME": NSTemporaryDirectory()], what: "chromium --screenshot \(page.name)")
            let image = try PNG.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: png))))
            #expect(image.width == 1280 && image.height == 2400, "\(page.name): \(image.width)×\(image.height) (\(shot.stderr.suffix(300)))")
            var ink = 0, chartBlue = 0
            for p in stride(from: 0, to: image.pixels.count, by: image.channels) {
                let r = Int(image.pixels[p]), g = Int(image.pixels[p + 1]), b = Int(image.pixels[p + 2])
                if min(r, g, b) < 200 { ink += 1 }
                if b > r + 60 && b > g + 20 { chartBlue += 1 }   // the charts' first colour, #1f6fb4
            }
            let total = image.width * image.height
            #expect(ink > total / 100, "\(page.name): \(ink) of \(total) pixels not white: blank page (\(png))")
            #expect(chartBlue > 2000, "\(page.name): \(chartBlue) chart-blue pixels: no chart drawn (\(png))")
            if page.images {
                // Thumbnails: many grey pixels (r = g = b, neither white nor black).
                var grey = 0
                for p in stride(from: 0, to: image.pixels.count, by: image.channels) {
                    let r = image.pixels[p], g = image.pixels[p + 1], b = image.pixels[p + 2]
                    if r == g && g == b && r > 30 && r < 220 { grey += 1 }
                }
                #expect(grey > 5000, "\(page.name): \(grey) grey pixels: no images drawn (\(png))")
            }
            print("HTML report \(page.name): screenshot \(png), \(ink) of \(total) pixels inked, \(chartBlue) chart-blue")

            let dom = try CLI.execute(chromium, Chromium.flags + ["--dump-dom", "file://\(page.path)"], timeout: 180,
                                      environment: ["HOME": NSTemporaryDirectory()], what: "chromium --dump-dom \(page.name)").stdout
            for id in Self.sections + page.figures { #expect(dom.contains("id=\"\(id)\""), "\(page.name): \(id) not in Chromium's DOM") }
            let svgs = page.html.components(separatedBy: "<svg").count - 1
            #expect(svgs >= page.figures.count && dom.components(separatedBy: "<svg").count - 1 == svgs, "\(page.name): \(svgs) SVGs in the file")
            #expect(dom.contains("<title>pathkernel report: "))
        }
    }

    /// The first problem with the nesting of tags (nil when every tag is closed in order).
    static func balanceProblem(_ text: String) -> String? {
        let void: Set<String> = ["meta", "br", "hr", "img", "input", "link"]
        var stack: [String] = []
        var i = text.startIndex
        while let lt = text[i...].firstIndex(of: "<") {
            guard let gt = text[lt...].firstIndex(of: ">") else { return "a '<' never closed" }
            let tag = text[text.index(after: lt)..<gt]
            i = text.index(after: gt)
            if tag.hasPrefix("!") { continue }
            if tag.hasPrefix("/") {
                let name = tag.dropFirst().lowercased()
                guard let open = stack.popLast(), open == name else { return "</\(name)> closes \(stack.last ?? "nothing")" }
                continue
            }
            let name = String(tag.prefix { !$0.isWhitespace && $0 != "/" }).lowercased()
            if tag.hasSuffix("/") || void.contains(name) { continue }
            if name == "style" {
                guard let end = text.range(of: "</style>", range: i..<text.endIndex) else { return "<style> never closed" }
                i = end.upperBound
                continue
            }
            stack.append(name)
        }
        return stack.isEmpty ? nil : "left open: \(stack.joined(separator: ", "))"
    }
}

enum Chromium {
    /// `chromium` (Debian) or `chromium-browser` on the PATH.
    static let path: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser"] {
            for d in dirs where FileManager.default.isExecutableFile(atPath: "\(d)/\(name)") { return "\(d)/\(name)" }
        }
        print("HTML report command: Chromium not installed (Debian: apt-get install chromium); the headless rendering test is skipped")
        return nil
    }()

    /// Headless, no sandbox (refused as root), nothing from the network or the GPU.
    static let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                        "--disable-extensions", "--disable-background-networking"]
}

/// Just enough PNG to count pixels: 8-bit RGB or RGBA, not interlaced (what Chromium writes).
enum PNG {
    struct Image { var width: Int, height: Int, channels: Int, pixels: [UInt8] }
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func decode(_ b: [UInt8]) throws -> Image {
        guard b.count > 8, b.prefix(8).elementsEqual([137, 80, 78, 71, 13, 10, 26, 10]) else { throw Failure(description: "not a PNG") }
        func u32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        var i = 8, width = 0, height = 0, depth = 0, colour = 0, interlace = 0
        var idat: [UInt8] = []
        while i + 8 <= b.count {
            let length = u32(i), type = String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self)
            guard length >= 0, i + 12 + length <= b.count else { throw Failure(description: "truncated chunk \(type)") }
            let data = b[(i + 8)..<(i + 8 + length)]
            if type == "IHDR" {
                width = u32(i + 8); height = u32(i + 12)
                depth = Int(data[data.startIndex + 8]); colour = Int(data[data.startIndex + 9]); interlace = Int(data[data.startIndex + 12])
            }
            if type == "IDAT" { idat += data }
            if type == "IEND" { break }
            i += 12 + length
        }
        guard depth == 8, colour == 2 || colour == 6, interlace == 0, width > 0, height > 0 else {
            throw Failure(description: "PNG depth \(depth) colour type \(colour) interlace \(interlace): not decoded here")
        }
        let channels = colour == 6 ? 4 : 3
        let raw = try Gzip.decompress(idat, name: "PNG IDAT")
        let stride = width * channels
        guard raw.count == height * (stride + 1) else { throw Failure(description: "IDAT holds \(raw.count) bytes for \(width)×\(height)") }
        var out = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = Int(raw[y * (stride + 1) + 1 + x])
                let a = x >= channels ? Int(out[y * stride + x - channels]) : 0
                let up = y > 0 ? Int(out[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(out[(y - 1) * stride + x - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = up
                case 3: predicted = (a + up) / 2
                case 4:
                    let p = a + up - c, pa = abs(p - a), pb = abs(p - up), pc = abs(p - c)
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? up : c)
                default: throw Failure(description: "PNG filter \(filter)")
                }
                out[y * stride + x] = UInt8((v + predicted) & 0xFF)
            }
        }
        return Image(width: width, height: height, channels: channels, pixels: out)
    }
}
