using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// What iptables 1.8 prints for -L (with -v, -n, -x and --line-numbers) and -S, line for line and column for
/// column, for a table's chains. A rule's -L line is made from its -S arguments, so both show its matches in the
/// same order.
/// </summary>
internal static class IptablesListing
{
    public static IReadOnlyList<string> List(IptablesTable table, IptablesCommand command, IptablesNameLookup names)
    {
        var family = command.Family;
        var options = command.ListOptions;
        var lines = new List<string>();
        var chains = command.Chain is { } name ? [table.Existing(name)] : Ordered(table);
        foreach (var chain in chains)
        {
            var view = IptablesTable.View(chain, family);
            if (command.RuleNumber is int number)
            {
                // iptables prints nothing for a rule the chain does not have.
                if (number <= view.Count) lines.Add(RuleLine(table, chain, view[number - 1].Rule, number, family, options, names));
                continue;
            }
            if (lines.Count > 0) lines.Add("");
            lines.Add(ChainLine(table, chain, family, options));
            lines.Add(HeaderLine(options));
            for (int i = 0; i < view.Count; i++) lines.Add(RuleLine(table, chain, view[i].Rule, i + 1, family, options, names));
        }
        return lines;
    }

    public static IReadOnlyList<string> Rules(IptablesTable table, IptablesCommand command)
    {
        var family = command.Family;
        bool counters = command.ListOptions.Verbose;
        var names = IptablesNameLookup.System;
        var chains = command.Chain is { } name ? [table.Existing(name)] : Ordered(table);
        var lines = new List<string>();
        if (command.RuleNumber is int number)
        {
            var chain = chains[0];
            var view = IptablesTable.View(chain, family);
            if (number <= view.Count) lines.Add(RuleArguments(chain, view[number - 1].Rule, family, counters, names));
            return lines;
        }
        foreach (var chain in chains)
        {
            if (chain.IsBuiltIn)
            {
                var line = $"-P {chain.Name} {Target(chain.PolicyOf(family))}";
                if (counters) line += $" -c {chain.PolicyCounterOf(family).Counts.Packets} {chain.PolicyCounterOf(family).Counts.Bytes}";
                lines.Add(line);
            }
            else lines.Add($"-N {chain.Name}");
        }
        foreach (var chain in chains)
            foreach (var (rule, _) in IptablesTable.View(chain, family)) lines.Add(RuleArguments(chain, rule, family, counters, names));
        return lines;
    }

    /// <summary>iptables' order: INPUT, FORWARD, OUTPUT, then user chains by name (in byte order).</summary>
    private static List<TableChain> Ordered(IptablesTable table) =>
        [.. table.BuiltIns, .. table.UserChains.OrderBy(c => c.Name, StringComparer.Ordinal)];

    private static string RuleArguments(TableChain chain, TableRule rule, IpFamily family, bool counters, IptablesNameLookup names)
    {
        var args = new List<string> { "-A", chain.Name };
        var spec = Spec(chain, rule, family, names);
        int target = spec.FindIndex(a => a is "-j" or "-g");
        if (target < 0) target = spec.Count;
        args.AddRange(spec.Take(target));
        if (counters) args.AddRange(["-c", rule.Counter.Counts.Packets.ToString(CultureInfo.InvariantCulture), rule.Counter.Counts.Bytes.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange(spec.Skip(target));
        // iptables-save quotes a log prefix always, other arguments only when they need it.
        return string.Join(' ', args.Select((a, i) => i > 0 && args[i - 1] == "--log-prefix" ? IptablesArguments.Quoted(a) : IptablesArguments.Quote(a)));
    }

    /// <summary>The rule's -S arguments, its repeated comment as typed.</summary>
    private static List<string> Spec(TableChain chain, TableRule rule, IpFamily family, IptablesNameLookup names)
    {
        var shown = IptablesTable.ShownName(chain, rule.Rule);
        var listed = shown == rule.Rule.Name ? rule.Rule : new Rule(shown, rule.Rule.Match, rule.Rule.Verdict);
        try
        {
            return [.. IptablesRuleSpec.FormatListedRule(listed, family, names)];
        }
        catch (BpfilterException e) when (e.ErrorId == "IptablesInexpressible")
        {
            var position = IptablesTable.View(chain, family).FindIndex(x => ReferenceEquals(x.Rule, rule)) + 1;
            throw new BpfilterException(e.ErrorId, e.Category, $"{chain.Name} rule {position}: {e.Message}", e);
        }
    }

    private static string Target(Verdict policy) => policy.Kind.ToString().ToUpperInvariant();

    private static string ChainLine(IptablesTable table, TableChain chain, IpFamily family, IptablesListOptions options)
    {
        if (!chain.IsBuiltIn)
        {
            int references = table.Chains.Sum(c => IptablesTable.View(c, family).Count(r => r.Rule.Rule.Verdict.Target == chain.Name));
            return $"Chain {chain.Name} ({references} references)";
        }
        var line = new StringBuilder($"Chain {chain.Name} (policy {Target(chain.PolicyOf(family))}");
        if (options.Verbose)
        {
            var counts = chain.PolicyCounterOf(family).Counts;
            line.Append(' ').Append(Number(counts.Packets, options.Exact, padded: false)).Append("packets, ")
                .Append(Number(counts.Bytes, options.Exact, padded: false)).Append("bytes");
        }
        return line.Append(')').ToString();
    }

    private static string HeaderLine(IptablesListOptions options)
    {
        var line = new StringBuilder();
        if (options.LineNumbers) line.Append("num".PadRight(4)).Append(' ');
        if (options.Verbose)
        {
            if (options.Exact) line.Append("pkts".PadLeft(8)).Append(' ').Append("bytes".PadLeft(10)).Append(' ');
            else line.Append("pkts".PadLeft(5)).Append(' ').Append("bytes".PadLeft(5)).Append(' ');
        }
        line.Append("target".PadRight(9)).Append(' ').Append(" prot ").Append("opt");
        if (options.Verbose) line.Append(' ').Append("in".PadRight(6)).Append(' ').Append("out".PadRight(6)).Append(' ');
        line.Append(' ').Append("source".PadRight(19)).Append(' ');
        line.Append(' ').Append("destination".PadRight(19)).Append(' ');
        return line.ToString();
    }

    /// <summary>
    /// A count as iptables prints it: exact (-x); or up to 99999 as it is, then in thousands (K), millions (M),
    /// billions (G) or trillions (T), rounded, with four digits at most (but in T). In a table the column is 5 wide
    /// (8 with -x); on the chain line there is no padding.
    /// </summary>
    private static string Number(ulong value, bool exact, bool padded)
    {
        string text;
        if (exact) return padded ? value.ToString(CultureInfo.InvariantCulture).PadLeft(8) + " " : value.ToString(CultureInfo.InvariantCulture) + " ";
        if (value <= 99999) text = value.ToString(CultureInfo.InvariantCulture);
        else
        {
            var rest = value;
            text = "";
            foreach (var unit in "KMGT")
            {
                rest = (rest + 500) / 1000;
                if (rest <= 9999 || unit == 'T')
                {
                    text = rest.ToString(CultureInfo.InvariantCulture) + unit;
                    break;
                }
            }
        }
        return (padded ? text.PadLeft(5) : text) + " ";
    }

    private static string RuleLine(IptablesTable table, TableChain chain, TableRule rule, int number, IpFamily family, IptablesListOptions options, IptablesNameLookup names)
    {
        var args = Spec(chain, rule, family, options.Numeric ? IptablesNameLookup.None : names);
        var parts = RuleParts.Read(args);
        var line = new StringBuilder();
        if (options.LineNumbers) line.Append(number.ToString(CultureInfo.InvariantCulture).PadRight(4)).Append(' ');
        if (options.Verbose)
        {
            line.Append(Number(rule.Counter.Counts.Packets, options.Exact, padded: true));
            line.Append(Number(rule.Counter.Counts.Bytes, options.Exact, padded: true));
        }
        line.Append((parts.Target ?? "").PadRight(9)).Append(' ');
        var protocol = rule.Rule.Match.Protocol;
        var protocolText = protocol is null ? (options.Numeric ? "0" : "all")
            : options.Numeric ? protocol.Protocol.Number.ToString(CultureInfo.InvariantCulture) : parts.Protocol!;
        line.Append(protocol is { Negated: true } ? '!' : ' ').Append(protocolText.PadRight(4)).Append(' ');
        var fragment = rule.Rule.Match.Fragment;
        line.Append(fragment is null ? "--" : fragment.Negated ? "!f" : "-f").Append(' ');
        if (options.Verbose)
        {
            line.Append(' ').Append(Interface(rule.Rule.Match.InInterface, options.Numeric).PadRight(6)).Append(' ');
            line.Append(Interface(rule.Rule.Match.OutInterface, options.Numeric).PadRight(6)).Append(' ');
        }
        Address(line, rule.Rule.Match.Source, parts.Source, family, options.Numeric, names);
        Address(line, rule.Rule.Match.Destination, parts.Destination, family, options.Numeric, names);
        if (parts.Goto) line.Append("[goto] ");
        foreach (var module in parts.Modules) line.Append(' ').Append(ModuleText(module, rule.Rule.Match, family, options.Numeric, names));
        if (parts.TargetOptions is { } targetOptions) line.Append(' ').Append(TargetText(parts.Target!, targetOptions, options.Numeric));
        return line.ToString();
    }

    private static string Interface(InterfaceMatch? match, bool numeric) =>
        match is null ? numeric ? "*" : "any" : (match.Negated ? "!" : "") + match.Name;

    private static void Address(StringBuilder line, AddressMatch? match, string? text, IpFamily family, bool numeric, IptablesNameLookup names)
    {
        string shown;
        if (match is null) shown = numeric ? family == IpFamily.Ipv6 ? "::/0" : "0.0.0.0/0" : "anywhere";
        else if (match.Prefixes.Count == 1)
        {
            var prefix = match.Prefixes[0];
            var name = numeric ? null : names.Address(prefix);
            shown = prefix.IsHost ? name ?? prefix.ToString() : $"{name ?? AddressText(prefix)}/{prefix.Length}";
        }
        else if (text is not null) shown = text; // a list, which iptables would have made one rule per address of
        else shown = numeric ? family == IpFamily.Ipv6 ? "::/0" : "0.0.0.0/0" : "anywhere"; // a range, which -m iprange shows
        line.Append(match is { Negated: true } && text is not null ? '!' : ' ').Append(shown.PadRight(19)).Append(' ');
    }

    private static string AddressText(IpPrefix prefix)
    {
        var text = prefix.ToString();
        var slash = text.IndexOf('/');
        return slash < 0 ? text : text[..slash];
    }

    private static string ModuleText(RuleParts.Module module, Match match, IpFamily family, bool numeric, IptablesNameLookup names)
    {
        var o = module.Options;
        byte protocol = match.Protocol?.Protocol.Number ?? 0;
        switch (module.Name)
        {
            case "tcp" or "udp":
                var text = new StringBuilder(module.Name);
                foreach (var (option, short_) in new[] { ("--sport", "spt"), ("--dport", "dpt") })
                {
                    if (o.Find(option) is not { } port) continue;
                    var range = port.Values[0];
                    text.Append(' ').Append(short_).Append(range.Contains(':') ? "s:" : ":").Append(port.Negated ? "!" : "").Append(Ports(range, protocol, numeric, names));
                }
                if (o.Find("--tcp-flags") is { } flags)
                {
                    var mask = IptablesNames.ParseTcpFlags(flags.Values[0], out _)!.Value;
                    var set = IptablesNames.ParseTcpFlags(flags.Values[1], out _)!.Value;
                    text.Append(" flags:").Append(flags.Negated ? "!" : "");
                    text.Append(numeric ? $"0x{(byte)mask:X2}/0x{(byte)set:X2}" : $"{IptablesNames.FormatTcpFlags(mask)}/{IptablesNames.FormatTcpFlags(set)}");
                }
                return text.ToString();
            case "icmp" or "icmp6":
                return Icmp(o.Options[0], family, numeric);
            case "multiport":
                var list = o.Options[0];
                return $"multiport {list.Name[2..]} {(list.Negated ? " !" : "")}{string.Join(',', list.Values[0].Split(',').Select(p => Ports(p, protocol, numeric, names)))}";
            case "iprange":
                return string.Join(' ', o.Options.Select(r => $"{(r.Name == "--src-range" ? "source" : "destination")} IP range {(r.Negated ? "! " : "")}{r.Values[0]}"));
            case "length":
                return $"length {(o.Options[0].Negated ? "!" : "")}{o.Options[0].Values[0]}";
            case "dscp":
                return $"DSCP match {(o.Options[0].Negated ? "!" : "")}{o.Options[0].Values[0]}";
            case "ttl" or "hl":
                var hops = o.Options[0];
                var upper = module.Name.ToUpperInvariant();
                var relation = hops.Name[^2..] switch { "eq" => hops.Negated ? "!=" : "==", "lt" => "<", _ => ">" };
                return $"{upper} match {upper} {relation} {hops.Values[0]}";
            case "mark":
                return $"mark match {(o.Options[0].Negated ? "! " : "")}{o.Options[0].Values[0]}";
            case "limit":
                var burst = o.Find("--limit-burst")?.Values[0] ?? LimitMatch.DefaultBurst.ToString(CultureInfo.InvariantCulture);
                return $"limit: avg {o.Find("--limit")!.Values[0]} burst {burst}";
            case "comment":
                return $"/* {o.Options[0].Values[0]} */";
            default:
                throw new InvalidOperationException($"no listing for -m {module.Name}");
        }
    }

    /// <summary>A port or "first:last", each by its service name unless numeric (iptables prints port 0 as 0).</summary>
    private static string Ports(string text, byte protocol, bool numeric, IptablesNameLookup names) =>
        string.Join(':', text.Split(':').Select(p =>
        {
            var port = ushort.Parse(p, CultureInfo.InvariantCulture);
            return numeric ? p : names.Service(port, protocol) ?? p;
        }));

    private static string Icmp(RuleParts.Option option, IpFamily family, bool numeric)
    {
        var value = option.Values[0];
        var slash = value.IndexOf('/');
        var type = byte.Parse(slash < 0 ? value : value[..slash], CultureInfo.InvariantCulture);
        byte? code = slash < 0 ? null : byte.Parse(value[(slash + 1)..], CultureInfo.InvariantCulture);
        var (module, typeWord) = family == IpFamily.Ipv6 ? ("ipv6-icmp", "ipv6-icmptype") : ("icmp", "icmptype");
        var name = numeric ? null : IptablesNames.FormatIcmp(type, code, family);
        if (name is not null) return $"{module} {(option.Negated ? "!" : "")}{name}";
        var codeText = code is { } c ? $" code {c}" : "";
        return option.Negated ? $"{module} !type {type}{codeText}" : $"{typeWord} {type}{codeText}";
    }

    private static string TargetText(string target, IReadOnlyList<RuleParts.Option> options, bool numeric)
    {
        if (target == "REJECT") return $"reject-with {options[0].Values[0]}";
        var prefix = options.FirstOrDefault(o => o.Name == "--log-prefix")?.Values[0];
        return (numeric ? "LOG flags 0 level 4" : "LOG level warn") + (prefix is null ? "" : $" prefix \"{prefix}\"");
    }

    /// <summary>A rule's -S arguments taken apart: addresses, target, and each -m module with its options in order.</summary>
    private sealed class RuleParts
    {
        public sealed record Option(string Name, bool Negated, IReadOnlyList<string> Values);

        public sealed record Module(string Name, ModuleOptions Options);

        public sealed class ModuleOptions(List<Option> options)
        {
            public List<Option> Options { get; } = options;
            public Option? Find(string name) => Options.FirstOrDefault(o => o.Name == name);
        }

        public string? Source { get; private set; }
        public string? Destination { get; private set; }
        public string? Protocol { get; private set; }
        public string? Target { get; private set; }
        public bool Goto { get; private set; }
        public IReadOnlyList<Option>? TargetOptions { get; private set; }
        public List<Module> Modules { get; } = [];

        /// <summary>Reads arguments the formatter wrote: every option but -f, --syn and the flags of LOG takes one value, --tcp-flags two.</summary>
        public static RuleParts Read(IReadOnlyList<string> args)
        {
            var parts = new RuleParts();
            List<Option>? current = null;
            for (int i = 0; i < args.Count;)
            {
                bool negated = args[i] == "!";
                if (negated) i++;
                var name = args[i++];
                int count = name is "-f" ? 0 : name == "--tcp-flags" ? 2 : 1;
                var values = args.Skip(i).Take(count).ToList();
                i += count;
                switch (name)
                {
                    case "-s":
                        parts.Source = values[0];
                        break;
                    case "-d":
                        parts.Destination = values[0];
                        break;
                    case "-p":
                        parts.Protocol = values[0];
                        break;
                    case "-i" or "-o" or "-f":
                        break;
                    case "-m":
                        current = [];
                        parts.Modules.Add(new Module(values[0], new ModuleOptions(current)));
                        break;
                    case "-j" or "-g":
                        parts.Target = values[0];
                        parts.Goto = name == "-g";
                        current = [];
                        if (values[0] is "REJECT" or "LOG") parts.TargetOptions = current;
                        break;
                    default:
                        current!.Add(new Option(name, negated, values));
                        break;
                }
            }
            if (parts.Target == "LOG") parts.TargetOptions ??= [];
            return parts;
        }
    }
}
