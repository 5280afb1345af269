using System.Globalization;
using Bpfilter.Engine.Rules;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Bpfilter.Engine.Formats;

/// <summary>
/// Reads the YAML ruleset format (version 1). Strict: an unknown key, a missing key, a wrong type or a bad
/// value is a <see cref="RulesetFormatException"/> with the file, line and column of the offending node.
/// </summary>
public static class YamlRulesetReader
{
    public const int FormatVersion = 1;

    // The limits: a ruleset file is read by a root process, so nothing in it may make the reader exhaust the host.
    // Every limit is checked while the text is read or parsed, before the node model holds more than the limit allows;
    // each error names the limit and points at the first thing beyond it. about_Bpfilter_Limits documents them.

    /// <summary>Files larger than this are refused before parsing (and text read through <see cref="Read"/> longer than this many characters).</summary>
    public const long MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>How deep mappings and lists may nest: a ruleset needs 6 levels; deeper input would only exhaust the stack.</summary>
    public const int MaxDepth = 32;

    /// <summary>Chains in one ruleset.</summary>
    public const int MaxChains = 1_000;

    /// <summary>Rules in one chain: large rulesets (100,000 rules) must load.</summary>
    public const int MaxRulesPerChain = 100_000;

    /// <summary>Rules in all the chains of one ruleset.</summary>
    public const int MaxRules = 200_000;

    /// <summary>
    /// YAML nodes (every key, value, list and mapping counts one) in one file: bounds the memory of the node model
    /// (about 150 bytes a node). A rule with a name and every match key is 17 nodes, so a 100,000-rule chain fits.
    /// </summary>
    public const int MaxNodes = 2_000_000;

    /// <summary>Characters in one scalar (key or value) or tag: the longest value a ruleset needs is a 4096-character cgroup path.</summary>
    public const int MaxScalarLength = 4096;

    private const string SeeHelp = "; see about_Bpfilter_Limits";

    private static readonly string[] RulesetKeys = ["bpfilter", "name", "chains"];
    private static readonly string[] ChainKeys = ["name", "hook", "interface", "cgroup", "namespace", "mode", "priority", "order", "policy", "rules"];
    private static readonly string[] RuleKeys = ["name", "match", "action"];
    private static readonly string[] MatchKeys = ["source", "destination", "protocol", "source-port", "destination-port", "ct-state", "ct-direction"];

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

    private sealed class Context(string file)
    {
        public Ruleset ReadRuleset(YamlNode root)
        {
            var map = Mapping(root, "the ruleset");
            CheckKeys(map, RulesetKeys, "ruleset");
            var version = Required(map, "bpfilter", "the ruleset");
            if (Scalar(version, "bpfilter") != FormatVersion.ToString(CultureInfo.InvariantCulture))
                throw Error(version, $"bpfilter: {Scalar(version, "bpfilter")} is not a format version this module reads (it reads {FormatVersion})");
            var nameNode = Required(map, "name", "the ruleset");
            var name = Scalar(nameNode, "name");
            Guard(nameNode, () => Names.CheckDeploymentName(name));
            var chainsNode = Required(map, "chains", "the ruleset");
            var chainSeq = Sequence(chainsNode, "chains");
            var chains = chainSeq.Children.Select(ReadChain).ToList();
            return Guard(chainsNode, () => new Ruleset(name, chains, FullPath(file)));
        }

        /// <summary>The ruleset's source path; null when the name given to <see cref="Read"/> is no path at all.</summary>
        private static string? FullPath(string file)
        {
            try
            {
                return Path.GetFullPath(file);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
            {
                return null;
            }
        }

        private Chain ReadChain(YamlNode node)
        {
            var map = Mapping(node, "a chain");
            CheckKeys(map, ChainKeys, "chain");
            var nameNode = Required(map, "name", "a chain");
            var name = Scalar(nameNode, "name");
            var hookNode = Required(map, "hook", $"chain '{name}'");
            var hookText = Scalar(hookNode, "hook");
            if (!HookNames.TryParse(hookText, out var hook))
                throw Error(hookNode, $"hook: '{hookText}' is not one of {string.Join(", ", HookNames.Names)}");
            var interfaceName = OptionalScalar(map, "interface");
            var cgroup = OptionalScalar(map, "cgroup");
            var networkNamespace = OptionalScalar(map, "namespace");
            var mode = Optional(map, "mode") is { } modeNode ? Enum<XdpMode>(modeNode, "mode") : XdpMode.Native;
            var order = Optional(map, "order") is { } orderNode ? Enum<TcxOrder>(orderNode, "order") : TcxOrder.Last;
            int? priority = null;
            if (Optional(map, "priority") is { } priorityNode)
            {
                var text = Scalar(priorityNode, "priority");
                priority = int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p) ? p
                    : throw Error(priorityNode, $"priority: '{text}' is not a whole number from {int.MinValue + 2} to {int.MaxValue - 1}");
            }
            var policy = Optional(map, "policy") is { } policyNode ? Guard(policyNode, () => Verdict.Parse(Scalar(policyNode, "policy"))) : Verdict.Accept;
            var ruleNodes = Optional(map, "rules") is { } rulesNode ? Sequence(rulesNode, "rules").Children : (IList<YamlNode>)[];
            var rules = ruleNodes.Select(ReadRule).ToList();
            try
            {
                return new Chain(name, hook, interfaceName, policy, rules, mode, priority, order, cgroup, networkNamespace);
            }
            catch (RulesetValidationException e)
            {
                YamlNode where = e.RuleIndex is { } i ? (Optional((YamlMappingNode)ruleNodes[i], "name") ?? ruleNodes[i])
                    : e.Field is { } field ? Optional(map, field) ?? (field == "name" ? nameNode : map) : nameNode;
                throw Error(where, e.Message, e);
            }
        }

        private Rule ReadRule(YamlNode node)
        {
            var map = Mapping(node, "a rule");
            CheckKeys(map, RuleKeys, "rule");
            string? name = null;
            if (Optional(map, "name") is { } nameNode)
            {
                name = Scalar(nameNode, "name");
                Guard(nameNode, () => Names.CheckRuleName(name));
            }
            var match = Optional(map, "match") is { } matchNode ? ReadMatch(matchNode) : Match.Any;
            var actionNode = Required(map, "action", name is null ? "a rule" : $"rule '{name}'");
            var verdict = Guard(actionNode, () => Verdict.Parse(Scalar(actionNode, "action")));
            return new Rule(name, match, verdict);
        }

        private Match ReadMatch(YamlNode node)
        {
            var map = Mapping(node, "match");
            CheckKeys(map, MatchKeys, "match");
            AddressMatch? Prefix(string key) => Optional(map, key) is { } n ? new AddressMatch([Guard(n, () => IpPrefix.Parse(Scalar(n, key)))]) : null;
            PortMatch? Port(string key) => Optional(map, key) is { } n ? PortMatch.Single(ParsePort(n, key)) : null;
            var protocol = Optional(map, "protocol") is { } p ? new ProtocolMatch(Guard(p, () => IpProtocol.Parse(Scalar(p, "protocol")))) : null;
            var source = Prefix("source");
            var destination = Prefix("destination");
            var sourcePort = Port("source-port");
            var destinationPort = Port("destination-port");
            var match = new Match
            {
                Source = source, Destination = destination, Protocol = protocol, SourcePort = sourcePort, DestinationPort = destinationPort,
                CtState = Optional(map, "ct-state") is { } state ? ReadCtState(state) : null,
                CtDirection = Optional(map, "ct-direction") is { } direction ? Guard(direction, () => CtDirectionNames.Parse(Scalar(direction, "ct-direction"))) : null,
            };
            Guard(node, () => { match.Validate(); return match; }, map);
            return match;
        }

        /// <summary>ct-state: "established,related" or "!new", or a list of states ([established, related]; "!" before the first negates all).</summary>
        private CtStateMatch ReadCtState(YamlNode node)
        {
            if (node is not YamlSequenceNode list) return Guard(node, () => CtStateMatch.Parse(CtStateText(node)));
            // Each state on its own first, so that an error points at the one that is wrong.
            var names = list.Children.Select(child =>
            {
                var text = CtStateText(child);
                Guard(child, () => CtStateMatch.Parse(text));
                return text;
            }).ToList();
            return Guard(node, () => CtStateMatch.Parse(names));
        }

        private string CtStateText(YamlNode node)
        {
            if (!node.Tag.IsEmpty)
                throw Error(node, $"ct-state: YAML reads an unquoted {node.Tag.Value} as a tag: write \"{node.Tag.Value}\" in quotes to negate");
            return Scalar(node, "ct-state");
        }

        private ushort ParsePort(YamlNode node, string key)
        {
            var text = Scalar(node, key);
            if (ushort.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port)) return port;
            throw Error(node, $"{key}: '{text}' is not a port (a number from 0 to 65535)");
        }

        private T Enum<T>(YamlNode node, string key) where T : struct, System.Enum
        {
            var text = Scalar(node, key);
            var names = System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant()).ToArray();
            if (names.Contains(text, StringComparer.Ordinal)) return System.Enum.Parse<T>(text, ignoreCase: true);
            throw Error(node, $"{key}: '{text}' is not one of {string.Join(", ", names)}");
        }

        private YamlMappingNode Mapping(YamlNode node, string what) =>
            node as YamlMappingNode ?? throw Error(node, $"{what} must be a mapping of keys to values, not {Describe(node)}");

        private YamlSequenceNode Sequence(YamlNode node, string key) =>
            node as YamlSequenceNode ?? throw Error(node, $"{key} must be a list, not {Describe(node)}");

        private string Scalar(YamlNode node, string key) =>
            node is YamlScalarNode { Value: { } value } ? value : throw Error(node, $"{key} must be a single value, not {Describe(node)}");

        private YamlNode Required(YamlMappingNode map, string key, string owner) =>
            Optional(map, key) ?? throw Error(map, $"{owner} has no '{key}' key");

        private string? OptionalScalar(YamlMappingNode map, string key) => Optional(map, key) is { } node ? Scalar(node, key) : null;

        private static YamlNode? Optional(YamlMappingNode map, string key) =>
            map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

        private void CheckKeys(YamlMappingNode map, string[] allowed, string owner)
        {
            foreach (var key in map.Children.Keys)
            {
                if (key is not YamlScalarNode { Value: { } name }) throw Error(key, $"{owner} keys must be plain words");
                if (!allowed.Contains(name, StringComparer.Ordinal))
                    throw Error(key, $"'{name}' is not a {owner} key (expected one of: {string.Join(", ", allowed)})");
            }
        }

        /// <summary>Runs a model constructor and puts the node's position on its validation error.</summary>
        private T Guard<T>(YamlNode node, Func<T> build, YamlMappingNode? fieldOwner = null)
        {
            try
            {
                return build();
            }
            catch (RulesetValidationException e)
            {
                var where = e.Field is { } field && fieldOwner is not null ? Optional(fieldOwner, field) ?? node : node;
                throw Error(where, e.Message, e);
            }
        }

        private void Guard(YamlNode node, Action check) => Guard(node, () => { check(); return 0; });

        private RulesetFormatException Error(YamlNode node, string reason, Exception? inner = null) =>
            new(file, node.Start.Line, node.Start.Column, reason, inner);

        private static string Describe(YamlNode node) => node switch
        {
            YamlMappingNode => "a mapping",
            YamlSequenceNode => "a list",
            YamlScalarNode { Value: null or "" } => "an empty value",
            YamlScalarNode s => $"'{s.Value}'",
            _ => "an alias",
        };
    }
}
