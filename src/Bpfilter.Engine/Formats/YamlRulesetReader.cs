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

    /// <summary>Files larger than this are refused before parsing.</summary>
    public const long MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>How deep mappings and lists may nest: a ruleset needs 6 levels; deeper input would only exhaust the stack.</summary>
    public const int MaxDepth = 32;

    /// <summary>Rules in one chain; the verifier refuses much less as a linear chain today, but the limit is for the reader.</summary>
    public const int MaxRulesPerChain = 100_000;

    public const int MaxChains = 1_000;

    private static readonly string[] RulesetKeys = ["bpfilter", "name", "chains"];
    private static readonly string[] ChainKeys = ["name", "hook", "interface", "cgroup", "namespace", "mode", "priority", "order", "policy", "rules"];
    private static readonly string[] RuleKeys = ["name", "match", "action"];
    private static readonly string[] MatchKeys = ["source", "destination", "protocol", "source-port", "destination-port"];

    public static Ruleset ReadFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new BpfilterException("RulesetNotFound", FailureCategory.ObjectNotFound, $"{path}: no such file");
        if (info.Length > MaxFileBytes)
            throw new RulesetFormatException(path, 1, 1, $"the file has {info.Length} bytes; rulesets are limited to {MaxFileBytes}");
        using var reader = new StreamReader(path, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true));
        return Read(reader, path);
    }

    public static Ruleset Read(TextReader text, string file)
    {
        var context = new Context(file);
        YamlStream stream = new();
        var parser = new PositionTrackingParser(new Parser(text), file);
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
            throw new RulesetFormatException(file, e.Start.Line, e.Start.Column, StripPosition(e.Message), e);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner can fail this way on some unclosed flow collections; the last event read is the best position.
            throw new RulesetFormatException(file, parser.LastLine, parser.LastColumn, "the YAML is malformed here (an unclosed '{' or '['?)", e);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new RulesetFormatException(file, 1, 1, "the file is not valid UTF-8", e);
        }
        if (stream.Documents.Count != 1)
            throw new RulesetFormatException(file, 1, 1, stream.Documents.Count == 0 ? "the file is empty" : "the file holds more than one YAML document");
        return context.ReadRuleset(stream.Documents[0].RootNode);
    }

    private static string StripPosition(string message)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the position goes in front in our own form.
        var marker = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line", StringComparison.Ordinal) && marker >= 0 ? message[(marker + 3)..] : message;
    }

    /// <summary>
    /// Sits between YamlDotNet's parser and its node model, event by event: remembers where the last event ended (for
    /// errors YamlDotNet raises without a position), refuses nesting deeper than <see cref="MaxDepth"/> before the node
    /// model's recursion could exhaust the stack, and refuses aliases, so no document can expand beyond its own size.
    /// </summary>
    private sealed class PositionTrackingParser(IParser inner, string file) : IParser
    {
        private int _depth;

        public long LastLine { get; private set; } = 1;
        public long LastColumn { get; private set; } = 1;
        public YamlDotNet.Core.Events.ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            if (inner.Current is { } current) (LastLine, LastColumn) = (current.End.Line, current.End.Column);
            if (!inner.MoveNext()) return false;
            switch (inner.Current)
            {
                case YamlDotNet.Core.Events.AnchorAlias alias:
                    throw new RulesetFormatException(file, alias.Start.Line, alias.Start.Column,
                        $"aliases (*{alias.Value}) are not supported in rulesets: write the value out");
                case YamlDotNet.Core.Events.NodeEvent { Anchor.IsEmpty: false } anchored:
                    throw new RulesetFormatException(file, anchored.Start.Line, anchored.Start.Column,
                        $"anchors (&{anchored.Anchor.Value}) are not supported in rulesets: write the value out");
                case YamlDotNet.Core.Events.MappingStart or YamlDotNet.Core.Events.SequenceStart when ++_depth > MaxDepth:
                    throw new RulesetFormatException(file, inner.Current.Start.Line, inner.Current.Start.Column,
                        $"the YAML nests deeper than {MaxDepth} levels; a ruleset needs far fewer");
                case YamlDotNet.Core.Events.MappingEnd or YamlDotNet.Core.Events.SequenceEnd:
                    _depth--;
                    break;
            }
            return true;
        }
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
            if (chainSeq.Children.Count > MaxChains)
                throw Error(chainSeq.Children[MaxChains], $"a ruleset has at most {MaxChains} chains");
            var chains = chainSeq.Children.Select(ReadChain).ToList();
            return Guard(chainsNode, () => new Ruleset(name, chains, Path.GetFullPath(file)));
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
                    : throw Error(priorityNode, $"priority: '{text}' is not a whole number");
            }
            var policy = Optional(map, "policy") is { } policyNode ? Enum<Verdict>(policyNode, "policy") : Verdict.Accept;
            var ruleNodes = Optional(map, "rules") is { } rulesNode ? Sequence(rulesNode, "rules").Children : (IList<YamlNode>)[];
            if (ruleNodes.Count > MaxRulesPerChain)
                throw Error(ruleNodes[MaxRulesPerChain], $"chain '{name}' has more than {MaxRulesPerChain} rules");
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
            var verdict = Enum<Verdict>(Required(map, "action", name is null ? "a rule" : $"rule '{name}'"), "action");
            return new Rule(name, match, verdict);
        }

        private Match ReadMatch(YamlNode node)
        {
            var map = Mapping(node, "match");
            CheckKeys(map, MatchKeys, "match");
            Ipv4Prefix? Prefix(string key) => Optional(map, key) is { } n ? Guard(n, () => Ipv4Prefix.Parse(Scalar(n, key))) : null;
            ushort? Port(string key) => Optional(map, key) is { } n ? ParsePort(n, key) : null;
            var protocol = Optional(map, "protocol") is { } p ? Guard(p, () => IpProtocol.Parse(Scalar(p, "protocol"))) : (IpProtocol?)null;
            var source = Prefix("source");
            var destination = Prefix("destination");
            var sourcePort = Port("source-port");
            var destinationPort = Port("destination-port");
            return Guard(node, () => new Match(source, destination, protocol, sourcePort, destinationPort), map);
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
