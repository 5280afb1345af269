using System.Globalization;
using Bpfilter.Engine.Rules;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Bpfilter.Engine.Formats;

/// <summary>
/// Reads the YAML ruleset format (version 1). Strict: an unknown key, a missing key, a wrong type or a bad
/// value is a <see cref="RulesetFormatException"/> with the file, line and column of the offending node.
/// </summary>
public static partial class YamlRulesetReader
{
    public const int FormatVersion = 1;

    // The limits: a ruleset file is read by a root process, so nothing in it may make the reader exhaust the host.
    // Every limit is checked while the text is read or parsed, before the node model holds more than the limit allows;
    // each error names the limit and points at the first thing beyond it. about_Bpfilter_Limits documents them.

    /// <summary>Files larger than this are refused before parsing (and text read through <see cref="Read"/> longer than this many characters).</summary>
    public const long MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>How deep mappings and lists may nest: a ruleset needs at most 9 levels; deeper input would only exhaust the stack.</summary>
    public const int MaxDepth = 32;

    /// <summary>Chains in one ruleset.</summary>
    public const int MaxChains = 1_000;

    /// <summary>Rules in one chain: large rulesets (100,000 rules) must load.</summary>
    public const int MaxRulesPerChain = 100_000;

    /// <summary>Rules in all the chains of one ruleset.</summary>
    public const int MaxRules = 200_000;

    /// <summary>
    /// YAML nodes (every key, value, list and mapping counts one) in one file: bounds the memory of the node model
    /// (about 150 bytes a node). A rule with a name, addresses, a protocol and a port is 15 nodes, so a 100,000-rule chain of
    /// them fits.
    /// </summary>
    public const int MaxNodes = 2_000_000;

    /// <summary>Characters in one scalar (key or value) or tag: the longest value a ruleset needs is a 4096-character cgroup path.</summary>
    public const int MaxScalarLength = 4096;

    private const string SeeHelp = "; see about_Bpfilter_Limits";

    // The keys of each mapping, in the order the writer writes them. The JSON schema test compares its key lists with these.
    internal static readonly string[] RulesetKeys = ["bpfilter", "name", "sets", "chains"];
    internal static readonly string[] SetKeys = ["type", "elements"];
    internal static readonly string[] ChainKeys = ["name", "hook", "interface", "cgroup", "namespace", "mode", "priority", "order", "policy", "rules"];
    internal static readonly string[] UserChainKeys = ["name", "rules"];
    internal static readonly string[] RuleKeys = ["name", "match", "action"];
    internal static readonly string[] MatchKeys =
    [
        "family", "in-interface", "out-interface", "source", "destination", "protocol", "source-port", "destination-port",
        "tcp-flags", "icmp-type", "icmp-code", "length", "fragment", "dscp", "ttl", "hop-limit", "mark", "ct-state", "ct-direction", "limit",
    ];

    /// <summary>The match keys whose condition can be negated ("!value" or { not: value }).</summary>
    internal static readonly string[] NegatableKeys = [.. MatchKeys.Except(["family", "limit", "ct-direction"])];

    /// <summary>The match keys that take a list of values.</summary>
    internal static readonly string[] ListKeys = ["source", "destination", "source-port", "destination-port", "ct-state"];

    internal const string NotKey = "not";
    internal static readonly string[] TcpFlagsKeys = ["mask", "set"];
    internal static readonly string[] LimitKeys = ["rate", "burst"];

    /// <summary>The verdicts written as a single word, and the keys of the verdicts written as a mapping of one key.</summary>
    internal static readonly string[] ActionWords = ["accept", "drop", "reject", "continue", "return", "log"];
    internal static readonly string[] ActionKeys = ["reject", "log", "jump", "goto"];

    /// <summary>
    /// Reads a ruleset file: UTF-8 (with or without a byte order mark; UTF-16 and UTF-32 with one). A missing file is a
    /// <see cref="BpfilterException"/> RulesetNotFound; everything else that fails is a <see cref="RulesetFormatException"/>.
    /// </summary>
    public static Ruleset ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileInfo info;
        try
        {
            info = new FileInfo(path);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw NotFound(path);
        }
        if (!info.Exists) throw NotFound(path);
        if (info.Length > MaxFileBytes) throw TooLarge(path, info.Length.ToString(CultureInfo.InvariantCulture));
        byte[] bytes;
        int length;
        try
        {
            // The length is read again, not trusted: a file can grow after the check, and devices and /proc files say 0.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            bytes = new byte[(int)Math.Min(Math.Max(info.Length, 4096), MaxFileBytes) + 1];
            length = 0;
            while (true)
            {
                if (length == bytes.Length)
                {
                    if (bytes.Length > MaxFileBytes) throw TooLarge(path, "more than " + MaxFileBytes.ToString(CultureInfo.InvariantCulture));
                    Array.Resize(ref bytes, (int)Math.Min(2L * bytes.Length, MaxFileBytes + 1));
                }
                int n = stream.Read(bytes, length, bytes.Length - length);
                if (n == 0) break;
                length += n;
            }
            if (length > MaxFileBytes) throw TooLarge(path, "more than " + MaxFileBytes.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw NotFound(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RulesetFormatException(path, 1, 1, $"the file cannot be read: {e.Message}", e);
        }
        return Read(new StringReader(Decode(path, bytes.AsSpan(0, length))), path);
    }

    private static BpfilterException NotFound(string path) =>
        new("RulesetNotFound", FailureCategory.ObjectNotFound, $"{path}: no such file");

    private static RulesetFormatException TooLarge(string path, string size) =>
        new(path, 1, 1, $"the file has {size} bytes; rulesets are limited to {MaxFileBytes} bytes (16 MiB){SeeHelp}");

    /// <summary>Decodes the file's bytes, refusing invalid UTF-8 (or UTF-16, UTF-32) with the position of the first bad byte.</summary>
    private static string Decode(string path, ReadOnlySpan<byte> bytes)
    {
        // The byte order mark is decoded with the rest: the text reader drops one at the start and refuses any other.
        switch (bytes)
        {
            case [0xFF, 0xFE, 0, 0, ..]: return DecodeUtf32(path, bytes, bigEndian: false);
            case [0, 0, 0xFE, 0xFF, ..]: return DecodeUtf32(path, bytes, bigEndian: true);
            case [0xFF, 0xFE, ..]: return DecodeUtf16(path, bytes, bigEndian: false);
            case [0xFE, 0xFF, ..]: return DecodeUtf16(path, bytes, bigEndian: true);
        }
        var chars = new char[bytes.Length];
        var status = System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out var read, out var written, replaceInvalidSequences: false);
        if (status != System.Buffers.OperationStatus.Done)
        {
            var (line, column) = RulesetTextReader.PositionAfter(chars.AsSpan(0, written));
            var bad = string.Join(' ', bytes[read..Math.Min(read + 4, bytes.Length)].ToArray().Select(b => $"0x{b:X2}"));
            Span<char> rest = stackalloc char[4];
            var truncated = bytes.Length - read < 4 && System.Text.Unicode.Utf8.ToUtf16(bytes[read..], rest, out _, out _,
                replaceInvalidSequences: false, isFinalBlock: false) == System.Buffers.OperationStatus.NeedMoreData;
            throw new RulesetFormatException(path, line, column,
                truncated
                    ? $"the file is not valid UTF-8: it ends inside a character ({bad})"
                    : $"the file is not valid UTF-8: the bytes here ({bad}) are not a UTF-8 character; save the file as UTF-8");
        }
        return new string(chars, 0, written);
    }

    // UTF-16 and UTF-32 by hand: .NET's decoders say where they failed only roughly.
    private static string DecodeUtf16(string path, ReadOnlySpan<byte> bytes, bool bigEndian)
    {
        var chars = new char[bytes.Length / 2];
        for (int i = 0; i < chars.Length; i++)
            chars[i] = (char)(bigEndian ? bytes[2 * i] << 8 | bytes[2 * i + 1] : bytes[2 * i + 1] << 8 | bytes[2 * i]);
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) throw NotEncoded(path, chars.AsSpan(0, i), $"the file is not valid UTF-16: U+{(int)chars[i]:X4} here is half of a surrogate pair");
        }
        if (bytes.Length % 2 != 0) throw NotEncoded(path, chars, "the file is not valid UTF-16: it ends inside a character");
        return new string(chars);
    }

    private static string DecodeUtf32(string path, ReadOnlySpan<byte> bytes, bool bigEndian)
    {
        var text = new System.Text.StringBuilder(bytes.Length / 4);
        for (int i = 0; i + 4 <= bytes.Length; i += 4)
        {
            var unit = bigEndian ? (uint)(bytes[i] << 24 | bytes[i + 1] << 16 | bytes[i + 2] << 8 | bytes[i + 3])
                : (uint)(bytes[i + 3] << 24 | bytes[i + 2] << 16 | bytes[i + 1] << 8 | bytes[i]);
            if (unit > 0x10FFFF || unit is >= 0xD800 and <= 0xDFFF)
                throw NotEncoded(path, text.ToString(), $"the file is not valid UTF-32: 0x{unit:X8} here is not a character");
            text.Append(char.ConvertFromUtf32((int)unit));
        }
        if (bytes.Length % 4 != 0) throw NotEncoded(path, text.ToString(), "the file is not valid UTF-32: it ends inside a character");
        return text.ToString();
    }

    private static RulesetFormatException NotEncoded(string path, ReadOnlySpan<char> before, string reason)
    {
        var (line, column) = RulesetTextReader.PositionAfter(before);
        return new RulesetFormatException(path, line, column, reason);
    }

    /// <summary>
    /// Reads a ruleset from text. Every failure is a <see cref="RulesetFormatException"/> naming <paramref name="file"/>,
    /// a line and a column; the limits of this class hold whatever the text is.
    /// </summary>
    public static Ruleset Read(TextReader text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(file);
        var context = new Context(file);
        YamlStream stream = new();
        var input = new RulesetTextReader(text, file);
        var parser = new PositionTrackingParser(new Parser(input), file);
        try
        {
            stream.Load(parser);
        }
        catch (RulesetFormatException)
        {
            throw;
        }
        catch (YamlException e)
        {
            var (line, column) = e.Start.Line >= 1 ? (e.Start.Line, e.Start.Column) : (parser.LastLine, parser.LastColumn);
            var reason = StripPosition(e.Message);
            if (reason.Contains("tab", StringComparison.OrdinalIgnoreCase))
            {
                if (input.IndentTabAtOrAfter(parser.LastLine, parser.LastColumn) is { } tab) (line, column) = tab;
                reason += " YAML indents with spaces, not tabs.";
            }
            if (reason.Contains("cannot start any token", StringComparison.Ordinal))
                reason += " A value that starts with @ or ` must be in quotes, as a set is: \"@blocklist\".";
            throw new RulesetFormatException(file, line, column, reason, e);
        }
        catch (InvalidOperationException e) when (e is not ObjectDisposedException)
        {
            // YamlDotNet's scanner can fail this way on some unclosed flow collections, and on tabs in the indentation of
            // a flow collection; the tab, or else the last event read, is the best position.
            if (input.IndentTabAtOrAfter(parser.LastLine, parser.LastColumn) is { } tab)
                throw new RulesetFormatException(file, tab.Line, tab.Column, "the YAML cannot be read at this tab: YAML indents with spaces, not tabs", e);
            throw new RulesetFormatException(file, parser.LastLine, parser.LastColumn, "the YAML is malformed here (an unclosed '{' or '['?)", e);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            // From the caller's reader: its decoder reads ahead, so the bad bytes are at or after this position.
            throw new RulesetFormatException(file, input.Line, input.Column, "the text is not valid UTF-8 (at or after this position)", e);
        }
        catch (Exception e) when (e is not (OutOfMemoryException or InsufficientExecutionStackException))
        {
            // Anything else (an I/O error of the caller's reader, a YamlDotNet defect) is still an error with a position.
            throw new RulesetFormatException(file, parser.LastLine, parser.LastColumn, $"the YAML cannot be read here: {e.Message}", e);
        }
        if (stream.Documents.Count != 1)
            throw new RulesetFormatException(file, 1, 1, stream.Documents.Count == 0 ? "the file is empty" : "the file holds more than one YAML document");
        var root = stream.Documents[0].RootNode;
        try
        {
            return context.ReadRuleset(root);
        }
        catch (RulesetFormatException)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A defect of this reader (the fuzz tests look for these): still an error with a position, not a crash.
            throw new RulesetFormatException(file, root.Start.Line, root.Start.Column, $"the ruleset cannot be read: {e.Message}", e);
        }
    }

    private static string StripPosition(string message)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the position goes in front in our own form.
        var marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line", StringComparison.Ordinal) && marker >= 0 ? message[(marker + 3)..] : message;
    }
}
