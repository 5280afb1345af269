using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats;

/// <summary>
/// Writes a ruleset as YAML format v1 in one canonical form, which <see cref="YamlRulesetReader"/> reads back into an
/// equal ruleset (the source path aside): keys in the order of the reader's key tables, defaults left out (mode native,
/// order last, priority 0), each rule one block with its match as one flow mapping, values quoted only where YAML
/// would read them otherwise. Writing the same ruleset twice gives the same text.
/// </summary>
public static class YamlRulesetWriter
{
    /// <summary>Sets with more elements than this are written one element a line.</summary>
    private const int FlowElements = 8;

    /// <summary>
    /// The ruleset as YAML text, lines ending in "\n". Fails with a <see cref="BpfilterException"/> RulesetNotWritable,
    /// before any text is made, for the few rulesets the format cannot express (see <see cref="Text"/> and <see cref="Interface"/>).
    /// </summary>
    public static string Write(Ruleset ruleset)
    {
        ArgumentNullException.ThrowIfNull(ruleset);
        var yaml = new StringBuilder();
        yaml.Append("bpfilter: ").Append(YamlRulesetReader.FormatVersion.ToString(CultureInfo.InvariantCulture)).Append('\n');
        yaml.Append("name: ").Append(Text(ruleset.Name)).Append('\n');
        if (ruleset.Sets.Count > 0)
        {
            yaml.Append("sets:\n");
            foreach (var set in ruleset.Sets) WriteSet(yaml, set);
        }
        yaml.Append("chains:\n");
        foreach (var chain in ruleset.Chains) WriteChain(yaml, chain);
        foreach (var chain in ruleset.UserChains)
        {
            yaml.Append("  - name: ").Append(Text(chain.Name)).Append('\n');
            WriteRules(yaml, chain.Rules);
        }
        return yaml.ToString();
    }

    private static void WriteSet(StringBuilder yaml, NamedSet set)
    {
        yaml.Append("  ").Append(Text(set.Name)).Append(":\n");
        yaml.Append("    type: ").Append(SetTypeNames.Format(set.Type)).Append('\n');
        var elements = set.Elements.Select(e => Value(e.ToString())).ToList();
        if (elements.Count <= FlowElements)
        {
            yaml.Append("    elements: [").AppendJoin(", ", elements).Append("]\n");
            return;
        }
        yaml.Append("    elements:\n");
        foreach (var element in elements) yaml.Append("      - ").Append(element).Append('\n');
    }

    private static void WriteChain(StringBuilder yaml, Chain chain)
    {
        yaml.Append("  - name: ").Append(Text(chain.Name)).Append('\n');
        yaml.Append("    hook: ").Append(chain.Hook.ToName()).Append('\n');
        if (chain.Interface is { } interfaceName) yaml.Append("    interface: ").Append(Text(interfaceName)).Append('\n');
        if (chain.Cgroup is { } cgroup) yaml.Append("    cgroup: ").Append(Text(cgroup)).Append('\n');
        if (chain.NetworkNamespace is { } networkNamespace) yaml.Append("    namespace: ").Append(Text(networkNamespace)).Append('\n');
        if (chain.Mode != XdpMode.Native) yaml.Append("    mode: ").Append(chain.Mode.ToString().ToLowerInvariant()).Append('\n');
        if (chain.Priority is int priority && priority != Chain.DefaultPriority)
            yaml.Append("    priority: ").Append(priority.ToString(CultureInfo.InvariantCulture)).Append('\n');
        if (chain.Order != TcxOrder.Last) yaml.Append("    order: ").Append(chain.Order.ToString().ToLowerInvariant()).Append('\n');
        yaml.Append("    policy: ").Append(Verdict.Name(chain.Policy.Kind)).Append('\n');
        WriteRules(yaml, chain.Rules);
    }

    private static void WriteRules(StringBuilder yaml, IReadOnlyList<Rule> rules)
    {
        if (rules.Count == 0)
        {
            yaml.Append("    rules: []\n");
            return;
        }
        yaml.Append("    rules:\n");
        foreach (var rule in rules)
        {
            var lead = "      - ";
            if (rule.Name is { } name)
            {
                yaml.Append(lead).Append("name: ").Append(Text(name)).Append('\n');
                lead = "        ";
            }
            if (!rule.Match.IsAny)
            {
                yaml.Append(lead).Append("match: ").Append(MatchText(rule.Match)).Append('\n');
                lead = "        ";
            }
            yaml.Append(lead).Append("action: ").Append(Action(rule.Verdict)).Append('\n');
        }
    }

    /// <summary>The match as one flow mapping, its keys in the reader's order.</summary>
    private static string MatchText(Match match)
    {
        var entries = new List<string>();
        void Add(string key, string? value)
        {
            if (value is not null) entries.Add($"{key}: {value}");
        }
        Add("family", match.Family is { } family ? Match.FamilyName(family) : null);
        Add("in-interface", match.InInterface is { } inInterface ? Interface(inInterface) : null);
        Add("out-interface", match.OutInterface is { } outInterface ? Interface(outInterface) : null);
        Add("source", match.Source is { } source ? Addresses(source) : null);
        Add("destination", match.Destination is { } destination ? Addresses(destination) : null);
        Add("protocol", match.Protocol is { } protocol ? Value(protocol.ToString()) : null);
        Add("source-port", match.SourcePort is { } sourcePort ? Ports(sourcePort) : null);
        Add("destination-port", match.DestinationPort is { } destinationPort ? Ports(destinationPort) : null);
        Add("tcp-flags", match.TcpFlags is { } tcpFlags ? Value(tcpFlags.ToString()) : null);
        Add("icmp-type", match.IcmpType is { } icmpType ? IcmpType(icmpType, match.Protocol?.Protocol == IpProtocol.Icmpv6) : null);
        Add("icmp-code", Range(match.IcmpCode));
        Add("length", Range(match.Length));
        Add("fragment", match.Fragment is { } fragment ? Value(fragment.ToString()) : null);
        Add("dscp", Range(match.Dscp));
        Add("ttl", Range(match.Ttl));
        Add("hop-limit", Range(match.HopLimit));
        Add("mark", match.Mark is { } mark ? Value(mark.ToString()) : null);
        Add("ct-state", match.CtState is { } ctState ? List(CtStateNames.Format(ctState.States).Split(','), ctState.Negated) : null);
        Add("ct-direction", match.CtDirection is { } ctDirection ? CtDirectionNames.Format(ctDirection) : null);
        Add("limit", match.Limit is { } limit ? Limit(limit) : null);
        return "{ " + string.Join(", ", entries) + " }";
    }

    /// <summary>
    /// A leading '!' negates an interface condition, so an interface whose name starts with one cannot be named: Linux
    /// allows such names, the ruleset language has no way to tell them from a negation.
    /// </summary>
    private static string Interface(InterfaceMatch match)
    {
        if (match.Name.StartsWith('!'))
            throw new BpfilterException("RulesetNotWritable", FailureCategory.InvalidData,
                $"the interface '{match.Name}' cannot be written in YAML: a leading '!' there means 'not'");
        return Text((match.Negated ? "!" : "") + match.Name);
    }

    private static string Addresses(AddressMatch match) =>
        match.Set is { } set ? Text((match.Negated ? "!@" : "@") + set) : List(match.Prefixes.Select(p => p.ToString()).ToList(), match.Negated);

    private static string Ports(PortMatch match) =>
        match.Set is { } set ? Text((match.Negated ? "!@" : "@") + set) : List(match.Ranges.Select(r => r.ToString()).ToList(), match.Negated);

    /// <summary>One value as "v" or "!v"; more as [a, b] or { not: [a, b] }: a '!' inside a list would be ambiguous.</summary>
    private static string List(IReadOnlyList<string> values, bool negated)
    {
        if (values.Count == 1) return Value((negated ? "!" : "") + values[0]);
        var list = "[" + string.Join(", ", values.Select(Value)) + "]";
        return negated ? $"{{ {YamlRulesetReader.NotKey}: {list} }}" : list;
    }

    private static string IcmpType(RangeMatch type, bool v6) =>
        type.First == type.Last && IcmpTypes.Name((byte)type.First, v6) is { } name ? Value((type.Negated ? "!" : "") + name) : Value(type.ToString());

    private static string? Range(RangeMatch? range) => range is null ? null : Value(range.ToString());

    private static string Limit(LimitMatch limit)
    {
        var rate = $"{limit.Count.ToString(CultureInfo.InvariantCulture)}/{limit.Unit.ToString().ToLowerInvariant()}";
        return limit.Burst == LimitMatch.DefaultBurst ? rate : $"{{ rate: {rate}, burst: {limit.Burst.ToString(CultureInfo.InvariantCulture)} }}";
    }

    private static string Action(Verdict verdict) => verdict.Kind switch
    {
        VerdictKind.Reject when verdict.With != RejectWith.Default => $"{{ reject: {RejectWithNames.Format(verdict.With)} }}",
        VerdictKind.Log when verdict.LogPrefix is { Length: > 0 } prefix => $"{{ log: {Text(prefix)} }}",
        VerdictKind.Jump or VerdictKind.Goto => $"{{ {Verdict.Name(verdict.Kind)}: {Text(verdict.Target!)} }}",
        _ => Verdict.Name(verdict.Kind),
    };

    // ---- Scalars -----------------------------------------------------------------------------------------------------

    /// <summary>The words YAML 1.1 or 1.2 read as null or a boolean when they stand unquoted.</summary>
    private static readonly HashSet<string> TypedWords =
    [
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];

    /// <summary>
    /// A value that is a name or a path: unquoted when it is a plain word that starts with a letter, '_' or '/' and
    /// that YAML would not read as null or a boolean; in double quotes otherwise, so that no YAML reader (an editor's
    /// schema check included) takes it for a number, a boolean, null or syntax.
    /// </summary>
    private static string Text(string value) =>
        value.Length > 0 && (char.IsAsciiLetter(value[0]) || value[0] is '_' or '/') && IsPlainWord(value) ? value : Quoted(value);

    /// <summary>
    /// A value that may be a number (a port, a range, an address, a protocol, a rate): also unquoted when it starts with
    /// a digit, so that editors see 22 as the number it is.
    /// </summary>
    private static string Value(string value) =>
        value.Length > 0 && char.IsAsciiLetterOrDigit(value[0]) && IsPlainWord(value) ? value : Quoted(value);

    private static bool IsPlainWord(string value) =>
        !TypedWords.Contains(value) && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '+' or '-');

    /// <summary>
    /// A double-quoted YAML scalar: '\' and '"' escaped, and every character the reader refuses raw (controls, line and
    /// paragraph separators, byte order marks, non-characters) written as an escape. A lone surrogate is no character
    /// at all and has no escape YAML reads, so it cannot be written.
    /// </summary>
    private static string Quoted(string value)
    {
        var quoted = new StringBuilder(value.Length + 2).Append('"');
        for (int i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                quoted.Append(c).Append(value[++i]);
                continue;
            }
            if (char.IsSurrogate(c))
                throw new BpfilterException("RulesetNotWritable", FailureCategory.InvalidData,
                    $"'{RulesetFormatException.Printable(value)}' holds half of a UTF-16 surrogate pair (U+{(int)c:X4}), which no text file can hold");
            switch (c)
            {
                case '\\': quoted.Append("\\\\"); break;
                case '"': quoted.Append("\\\""); break;
                case '\t': quoted.Append("\\t"); break;
                case '\n': quoted.Append("\\n"); break;
                case '\r': quoted.Append("\\r"); break;
                case < ' ' or (>= '\u007F' and <= '\u009F') or '\u2028' or '\u2029' or '\uFEFF' or '\uFFFE' or '\uFFFF':
                    quoted.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    break;
                default: quoted.Append(c); break;
            }
        }
        return quoted.Append('"').ToString();
    }
}
