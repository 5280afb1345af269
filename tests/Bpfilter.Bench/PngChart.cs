using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Bpfilter.Bench;

/// <summary>One line of the chart: points (x, y) with y > 0, or a flat reference (one y drawn dashed across).</summary>
internal sealed record ChartSeries(string Label, IReadOnlyList<(double X, double Y)> Points, bool Reference = false);

/// <summary>
/// A log-log line chart written as a PNG with no library: an RGB canvas, Bresenham lines, a 5x7 bitmap font, and
/// the PNG container (IHDR, one zlib IDAT from System.IO.Compression, IEND, each with its CRC-32).
/// </summary>
internal sealed class PngChart
{
    private const int Width = 1100, Height = 620, Left = 90, Right = 780, Top = 50, Bottom = 550;
    private static readonly (byte, byte, byte) Major = (200, 200, 200), Minor = (235, 235, 235);
    private readonly byte[] _pixels = new byte[Width * Height * 3];

    private static readonly (byte R, byte G, byte B)[] Palette =
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
        (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (90, 90, 200),
    ];

    public static byte[] Render(string title, string xLabel, string yLabel, (double Min, double Max) x, (double Min, double Max) y, IReadOnlyList<ChartSeries> series)
    {
        var chart = new PngChart();
        chart.Fill(0, 0, Width, Height, (255, 255, 255));
        double lx0 = Math.Log10(x.Min), lx1 = Math.Log10(x.Max), ly0 = Math.Log10(y.Min), ly1 = Math.Log10(y.Max);
        int Px(double v) => Left + (int)Math.Round((Math.Log10(v) - lx0) / (lx1 - lx0) * (Right - Left));
        int Py(double v) => Bottom - (int)Math.Round((Math.Log10(Math.Clamp(v, y.Min, y.Max)) - ly0) / (ly1 - ly0) * (Bottom - Top));

        // Grid and ticks at every power of ten, minor lines at 2 and 5.
        for (int e = (int)Math.Floor(ly0); e <= (int)Math.Ceiling(ly1); e++)
        {
            foreach (var m in new[] { 1, 2, 5 })
            {
                double v = m * Math.Pow(10, e);
                if (v < y.Min || v > y.Max) continue;
                chart.Line(Left, Py(v), Right, Py(v), m == 1 ? Major : Minor, 1, false);
                chart.Text(Label(v), Left - 8 - TextWidth(Label(v), 2), Py(v) - 7, 2, (60, 60, 60));
            }
        }
        for (int e = (int)Math.Floor(lx0); e <= (int)Math.Ceiling(lx1); e++)
        {
            double v = Math.Pow(10, e);
            if (v < x.Min || v > x.Max) continue;
            chart.Line(Px(v), Top, Px(v), Bottom, (200, 200, 200), 1, false);
            var text = v.ToString("#,0", System.Globalization.CultureInfo.InvariantCulture);
            chart.Text(text, Px(v) - TextWidth(text, 2) / 2, Bottom + 10, 2, (60, 60, 60));
        }
        chart.Line(Left, Bottom, Right, Bottom, (0, 0, 0), 1, false);
        chart.Line(Left, Top, Left, Bottom, (0, 0, 0), 1, false);
        chart.Text(title, Left, 16, 2, (0, 0, 0));
        chart.Text(xLabel, (Left + Right) / 2 - TextWidth(xLabel, 2) / 2, Bottom + 36, 2, (0, 0, 0));
        chart.Text(yLabel, 8, Top - 24, 2, (0, 0, 0));

        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var color = Palette[i % Palette.Length];
            if (s.Reference)
            {
                if (s.Points.Count > 0) chart.Line(Left, Py(s.Points[0].Y), Right, Py(s.Points[0].Y), color, 2, true);
            }
            else
            {
                for (int p = 1; p < s.Points.Count; p++)
                    chart.Line(Px(s.Points[p - 1].X), Py(s.Points[p - 1].Y), Px(s.Points[p].X), Py(s.Points[p].Y), color, 2, false);
                foreach (var (px, py) in s.Points) chart.Dot(Px(px), Py(py), 4, color);
            }
            int ly = Top + 10 + i * 24;
            chart.Line(Right + 20, ly + 6, Right + 50, ly + 6, color, 2, s.Reference);
            chart.Text(s.Label, Right + 58, ly, 2, (0, 0, 0));
        }
        return chart.Encode();
    }

    private static string Label(double v) => v.ToString(v < 1 ? "0.#####" : "0", System.Globalization.CultureInfo.InvariantCulture);

    private void Set(int x, int y, (byte R, byte G, byte B) c)
    {
        if (x < 0 || y < 0 || x >= Width || y >= Height) return;
        int i = (y * Width + x) * 3;
        (_pixels[i], _pixels[i + 1], _pixels[i + 2]) = c;
    }

    private void Fill(int x, int y, int w, int h, (byte, byte, byte) c)
    {
        for (int j = y; j < y + h; j++) for (int i = x; i < x + w; i++) Set(i, j, c);
    }

    private void Dot(int cx, int cy, int r, (byte, byte, byte) c)
    {
        for (int j = -r; j <= r; j++) for (int i = -r; i <= r; i++) if (i * i + j * j <= r * r) Set(cx + i, cy + j, c);
    }

    private void Line(int x0, int y0, int x1, int y1, (byte, byte, byte) c, int thickness, bool dashed)
    {
        int dx = Math.Abs(x1 - x0), dy = -Math.Abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy, step = 0;
        while (true)
        {
            if (!dashed || step++ % 12 < 7)
                for (int t = 0; t < thickness; t++) { Set(x0, y0 + t, c); Set(x0 + t, y0, c); }
            if (x0 == x1 && y0 == y1) break;
            int e2 = 2 * err;
            if (e2 >= dy) { err += dy; x0 += sx; }
            if (e2 <= dx) { err += dx; y0 += sy; }
        }
    }

    private static int TextWidth(string text, int scale) => text.Length * 6 * scale;

    private void Text(string text, int x, int y, int scale, (byte, byte, byte) c)
    {
        foreach (var ch in text.ToUpperInvariant())
        {
            if (Font.TryGetValue(ch, out var rows))
                for (int row = 0; row < 7; row++)
                    for (int col = 0; col < 5; col++)
                        if (rows[row * 6 + col] == '1') Fill(x + col * scale, y + row * scale, scale, scale, c);
            x += 6 * scale;
        }
    }

    private byte[] Encode()
    {
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, Width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), Height);
        header[8] = 8; // bits per channel
        header[9] = 2; // truecolour RGB
        Chunk(png, "IHDR", header);
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            for (int y = 0; y < Height; y++)
            {
                zlib.WriteByte(0); // filter: none
                zlib.Write(_pixels, y * Width * 3, Width * 3);
            }
        }
        Chunk(png, "IDAT", raw.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        var length = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        png.Write(length);
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typed);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(typed));
        png.Write(crc);
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xffffffff;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xedb88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>5x7 glyphs, rows top to bottom; lower case is drawn as upper case.</summary>
    private static readonly Dictionary<char, string> Font = new()
    {
        ['A'] = "01110 10001 10001 11111 10001 10001 10001", ['B'] = "11110 10001 10001 11110 10001 10001 11110",
        ['C'] = "01110 10001 10000 10000 10000 10001 01110", ['D'] = "11110 10001 10001 10001 10001 10001 11110",
        ['E'] = "11111 10000 10000 11110 10000 10000 11111", ['F'] = "11111 10000 10000 11110 10000 10000 10000",
        ['G'] = "01110 10001 10000 10111 10001 10001 01111", ['H'] = "10001 10001 10001 11111 10001 10001 10001",
        ['I'] = "01110 00100 00100 00100 00100 00100 01110", ['J'] = "00111 00010 00010 00010 00010 10010 01100",
        ['K'] = "10001 10010 10100 11000 10100 10010 10001", ['L'] = "10000 10000 10000 10000 10000 10000 11111",
        ['M'] = "10001 11011 10101 10101 10001 10001 10001", ['N'] = "10001 10001 11001 10101 10011 10001 10001",
        ['O'] = "01110 10001 10001 10001 10001 10001 01110", ['P'] = "11110 10001 10001 11110 10000 10000 10000",
        ['Q'] = "01110 10001 10001 10001 10101 10010 01101", ['R'] = "11110 10001 10001 11110 10100 10010 10001",
        ['S'] = "01111 10000 10000 01110 00001 00001 11110", ['T'] = "11111 00100 00100 00100 00100 00100 00100",
        ['U'] = "10001 10001 10001 10001 10001 10001 01110", ['V'] = "10001 10001 10001 10001 10001 01010 00100",
        ['W'] = "10001 10001 10001 10101 10101 10101 01010", ['X'] = "10001 10001 01010 00100 01010 10001 10001",
        ['Y'] = "10001 10001 10001 01010 00100 00100 00100", ['Z'] = "11111 00001 00010 00100 01000 10000 11111",
        ['0'] = "01110 10001 10011 10101 11001 10001 01110", ['1'] = "00100 01100 00100 00100 00100 00100 01110",
        ['2'] = "01110 10001 00001 00010 00100 01000 11111", ['3'] = "11111 00010 00100 00010 00001 10001 01110",
        ['4'] = "00010 00110 01010 10010 11111 00010 00010", ['5'] = "11111 10000 11110 00001 00001 10001 01110",
        ['6'] = "00110 01000 10000 11110 10001 10001 01110", ['7'] = "11111 00001 00010 00100 01000 01000 01000",
        ['8'] = "01110 10001 10001 01110 10001 10001 01110", ['9'] = "01110 10001 10001 01111 00001 00010 01100",
        ['-'] = "00000 00000 00000 11111 00000 00000 00000", ['.'] = "00000 00000 00000 00000 00000 01100 01100",
        ['('] = "00010 00100 01000 01000 01000 00100 00010", [')'] = "01000 00100 00010 00010 00010 00100 01000",
        ['/'] = "00000 00001 00010 00100 01000 10000 00000", [','] = "00000 00000 00000 00000 01100 00100 01000",
        [':'] = "00000 01100 01100 00000 01100 01100 00000", ['='] = "00000 00000 11111 00000 11111 00000 00000",
        ['+'] = "00000 00100 00100 11111 00100 00100 00000", ['%'] = "11000 11001 00010 00100 01000 10011 00011",
        [' '] = "00000 00000 00000 00000 00000 00000 00000",
    };
}
