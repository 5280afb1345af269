using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Bpfilter.Engine.Formats;

/// <summary>
/// Sits between YamlDotNet's parser and its node model, event by event, so that every limit of
/// <see cref="YamlRulesetReader"/> holds before the node model has built (or recursed into) anything: it remembers
/// where the last event ended (for errors YamlDotNet raises without a position); refuses a second document, anchors
/// and aliases (so no document expands beyond its own size), nesting deeper than <see cref="YamlRulesetReader.MaxDepth"/>,
/// more than <see cref="YamlRulesetReader.MaxNodes"/> nodes, values and tags longer than
/// <see cref="YamlRulesetReader.MaxScalarLength"/>, and keys that are lists or mappings; and counts the chains and rules
/// of the ruleset's shape (the root mapping's "chains" list, each chain mapping's "rules" list) against
/// <see cref="YamlRulesetReader.MaxChains"/>, <see cref="YamlRulesetReader.MaxRulesPerChain"/> and
/// <see cref="YamlRulesetReader.MaxRules"/>.
/// </summary>
internal sealed class PositionTrackingParser(IParser inner, string file) : IParser
{
    private const string SeeHelp = "; see about_Bpfilter_Limits";

    private enum Role { None, Root, Chains, Chain, Rules }

    private sealed class Frame(bool isMapping, Role role)
    {
        public bool IsMapping { get; } = isMapping;
        public Role Role { get; } = role;
        public bool ExpectKey { get; set; } = isMapping;
        public string? Key { get; set; }
        public int Entries { get; set; }
        public string? ChainName { get; set; }
    }

    private readonly Stack<Frame> _frames = new();
    private int _documents;
    private long _nodes;
    private int _rules;
    private bool _needNode;

    public long LastLine { get; private set; } = 1;
    public long LastColumn { get; private set; } = 1;
    public ParsingEvent? Current => inner.Current;

    public bool MoveNext()
    {
        if (inner.Current is { } current) (LastLine, LastColumn) = (current.End.Line, current.End.Column);
        try
        {
            if (!inner.MoveNext()) return false;
        }
        catch (ArgumentException e) when (e is not System.Text.DecoderFallbackException)
        {
            // YamlDotNet's parser checks tags ("!![a]", "!<>") with constructors that throw ArgumentException, without a
            // position; the tag is the next thing after the last event.
            var reason = e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;
            throw new RulesetFormatException(file, LastLine, LastColumn, $"the YAML after this position is not valid: {reason}", e);
        }
        if (_needNode && inner.Current is not (NodeEvent or AnchorAlias)) Malformed("a key or a document has no value");
        if (inner.Current is DocumentEnd or StreamEnd && _frames.Count > 0) Malformed("a list or a mapping is not closed");
        _needNode = inner.Current is DocumentStart;
        switch (inner.Current)
        {
            case DocumentStart when ++_documents > 1:
                // The whole file is at fault, and the first document may be fine: the position is the file's start.
                throw new RulesetFormatException(file, 1, 1, "the file holds more than one YAML document");
            case AnchorAlias alias:
                throw Error(alias, $"aliases are not supported in rulesets: *{Shorten(alias.Value.Value)} repeats a value "
                    + "anchored elsewhere; write the value out instead");
            case NodeEvent { Anchor.IsEmpty: false } anchored:
                throw Error(anchored, $"anchors are not supported in rulesets (nor the aliases that repeat them): "
                    + $"remove &{Shorten(anchored.Anchor.Value)} and write the value out wherever it is needed");
            case NodeEvent node:
                Node(node);
                break;
            case MappingEnd or SequenceEnd:
                _frames.TryPop(out _);
                break;
        }
        return true;
    }

    private void Node(NodeEvent node)
    {
        if (++_nodes > YamlRulesetReader.MaxNodes)
            throw Error(node, $"the YAML has more than {YamlRulesetReader.MaxNodes} nodes (keys, values, lists and mappings), "
                + "the limit for a ruleset" + SeeHelp);
        if (!node.Tag.IsEmpty && node.Tag.Value.Length > YamlRulesetReader.MaxScalarLength)
            throw Error(node, $"a tag of {node.Tag.Value.Length} characters is longer than {YamlRulesetReader.MaxScalarLength}, "
                + "the limit for one value" + SeeHelp);
        if (node is Scalar { Value.Length: > YamlRulesetReader.MaxScalarLength } long_)
            throw Error(node, $"a value of {long_.Value.Length} characters is longer than {YamlRulesetReader.MaxScalarLength}, "
                + "the limit for one value" + SeeHelp);

        _frames.TryPeek(out var parent);
        if (parent is { IsMapping: true, ExpectKey: true })
        {
            if (node is not Scalar key)
                throw Error(node, $"a key must be a plain word, not {(node is MappingStart ? "a mapping" : "a list")}");
            parent.Entries++;
            parent.Key = key.Value;
            parent.ExpectKey = false;
            _needNode = true;
            return;
        }

        var role = Role.None;
        if (parent is null)
            role = node is MappingStart ? Role.Root : Role.None;
        else if (parent.IsMapping)
        {
            var key = parent.Key;
            (parent.Key, parent.ExpectKey) = (null, true);
            role = (parent.Role, key, node) switch
            {
                (Role.Root, "chains", SequenceStart) => Role.Chains,
                (Role.Chain, "rules", SequenceStart) => Role.Rules,
                _ => Role.None,
            };
            if (parent.Role == Role.Chain && key == "name" && node is Scalar name) parent.ChainName = name.Value;
        }
        else
        {
            parent.Entries++;
            if (parent.Role == Role.Chains)
            {
                if (parent.Entries > YamlRulesetReader.MaxChains)
                    throw Error(node, $"the ruleset has more than {YamlRulesetReader.MaxChains} chains, the limit per ruleset" + SeeHelp);
                role = node is MappingStart ? Role.Chain : Role.None;
            }
            else if (parent.Role == Role.Rules)
            {
                if (parent.Entries > YamlRulesetReader.MaxRulesPerChain)
                {
                    var chain = _frames.Skip(1).First();
                    var which = chain.ChainName is { Length: > 0 and <= 29 } n ? $"chain '{n}'" : "a chain";
                    throw Error(node, $"{which} has more than {YamlRulesetReader.MaxRulesPerChain} rules, the limit per chain" + SeeHelp);
                }
                if (++_rules > YamlRulesetReader.MaxRules)
                    throw Error(node, $"the ruleset has more than {YamlRulesetReader.MaxRules} rules in all its chains, "
                        + "the limit per ruleset" + SeeHelp);
            }
        }

        if (node is MappingStart or SequenceStart)
        {
            if (_frames.Count + 1 > YamlRulesetReader.MaxDepth)
                throw Error(node, $"the YAML nests deeper than {YamlRulesetReader.MaxDepth} levels, the limit for a ruleset "
                    + "(a ruleset needs at most 9)" + SeeHelp);
            _frames.Push(new Frame(node is MappingStart, role));
        }
    }

    /// <summary>
    /// YamlDotNet's parser can emit events out of shape (a mapping that ends between a key and its value) just before it
    /// reports the syntax error behind them; its node model would fail on them with an ArgumentException. The next
    /// event, if it is that syntax error, is the better message.
    /// </summary>
    private void Malformed(string what)
    {
        var at = inner.Current!;
        inner.MoveNext();
        throw Error(at, $"the YAML is malformed here: {what}");
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    private RulesetFormatException Error(ParsingEvent at, string reason) => new(file, at.Start.Line, at.Start.Column, reason);
}
