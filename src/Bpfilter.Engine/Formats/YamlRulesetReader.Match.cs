using System.Globalization;
using Bpfilter.Engine.Rules;
using YamlDotNet.RepresentationModel;

namespace Bpfilter.Engine.Formats;

public static partial class YamlRulesetReader
{
    private sealed partial class Context
    {
        /// <summary>
        /// A condition as written: the node that holds its value (a single value or a list), the values with their nodes,
        /// and whether it is negated ("!value" or { not: value }).
        /// </summary>
        private sealed record Condition(YamlNode Node, IReadOnlyList<(YamlNode Node, string Text)> Values, bool Negated)
        {
            public YamlNode SingleNode => Values[0].Node;
            public string Single => Values[0].Text;
        }

        private Match ReadMatch(YamlNode node)
        {
            var map = Mapping(node, "match");
            CheckKeys(map, MatchKeys, "match");
            YamlNode? Key(string key) => Optional(map, key);
            // The protocol comes first: an ICMP type name means one thing for icmp and another for icmpv6.
            var protocol = Key("protocol") is { } p ? ReadProtocol(p) : null;
            var match = new Match
            {
                Family = Key("family") is { } family ? ReadFamily(family) : null,
                InInterface = Key("in-interface") is { } inInterface ? ReadInterface(inInterface, "in-interface") : null,
                OutInterface = Key("out-interface") is { } outInterface ? ReadInterface(outInterface, "out-interface") : null,
                Source = Key("source") is { } source ? ReadAddresses(source, "source") : null,
                Destination = Key("destination") is { } destination ? ReadAddresses(destination, "destination") : null,
                Protocol = protocol,
                SourcePort = Key("source-port") is { } sourcePort ? ReadPorts(sourcePort, "source-port") : null,
                DestinationPort = Key("destination-port") is { } destinationPort ? ReadPorts(destinationPort, "destination-port") : null,
                TcpFlags = Key("tcp-flags") is { } tcpFlags ? ReadTcpFlags(tcpFlags) : null,
                IcmpType = Key("icmp-type") is { } icmpType ? ReadIcmpType(icmpType, protocol) : null,
                IcmpCode = Key("icmp-code") is { } icmpCode ? ReadRange(icmpCode, "icmp-code", 255) : null,
                Length = Key("length") is { } length ? ReadRange(length, "length", 65535 + 40) : null,
                Fragment = Key("fragment") is { } fragment ? ReadFragment(fragment) : null,
                Dscp = Key("dscp") is { } dscp ? ReadRange(dscp, "dscp", 63) : null,
                Ttl = Key("ttl") is { } ttl ? ReadRange(ttl, "ttl", 255) : null,
                HopLimit = Key("hop-limit") is { } hopLimit ? ReadRange(hopLimit, "hop-limit", 255) : null,
                Mark = Key("mark") is { } mark ? ReadMark(mark) : null,
                CtState = Key("ct-state") is { } ctState ? ReadCtState(ctState) : null,
                CtDirection = Key("ct-direction") is { } ctDirection ? ReadCtDirection(ctDirection) : null,
                Limit = Key("limit") is { } limit ? ReadLimit(limit) : null,
            };
            try
            {
                match.Validate();
            }
            catch (RulesetValidationException e)
            {
                throw Error(e.Field is { } field ? Optional(map, field) ?? node : node, e.Message, e);
            }
            return match;
        }

        /// <summary>
        /// Reads a condition's value: a single value, "!value", a list (for the keys of <see cref="ListKeys"/>), or
        /// { not: value-or-list }. A '!' inside a list, or inside { not: ... }, is refused as ambiguous.
        /// </summary>
        private Condition ReadCondition(YamlNode node, string key)
        {
            bool negatable = NegatableKeys.Contains(key, StringComparer.Ordinal);
            bool negated = false;
            if (node is YamlMappingNode map && negatable)
            {
                var hint = key == "tcp-flags" ? ", or { mask: [...], set: [...] }" : "";
                CheckKeys(map, [NotKey], key, k => $"'{k}' is not a key of {key}: a mapping here negates, as {key}: {{ not: VALUE }}{hint}");
                node = Optional(map, NotKey) ?? throw Error(map, $"{key}: an empty mapping is no condition: write {key}: VALUE or {key}: {{ not: VALUE }}");
                negated = true;
            }
            if (node is YamlSequenceNode list)
            {
                if (!ListKeys.Contains(key, StringComparer.Ordinal)) throw Error(node, $"{key} must be a single value, not a list");
                var items = new List<(YamlNode, string)>();
                foreach (var item in list.Children)
                {
                    var text = Scalar(item, key);
                    if (text.StartsWith('!'))
                        throw Error(item, $"{key}: a '!' inside a list is ambiguous: negate the whole list, as {key}: {{ not: [...] }}");
                    if (text.StartsWith('@'))
                        throw Error(item, $"{key}: a set stands alone, not in a list: write {key}: \"{text}\"");
                    items.Add((item, text));
                }
                return new Condition(node, items, negated);
            }
            var value = Scalar(node, key);
            if (value.StartsWith('!'))
            {
                if (negated) throw Error(node, $"{key}: a '!' inside {{ not: ... }} negates twice: write the value without '!'");
                if (!negatable) throw Error(node, $"{key} cannot be negated");
                value = value[1..];
                if (value.StartsWith('!')) throw Error(node, $"{key}: '!!' negates twice: write one '!' or none");
                negated = true;
            }
            return new Condition(node, [(node, value)], negated);
        }

        private IpFamily ReadFamily(YamlNode node) => ReadCondition(node, "family").Single switch
        {
            "ipv4" => IpFamily.Ipv4,
            "ipv6" => IpFamily.Ipv6,
            var other => throw Error(node, $"family: '{other}' is not ipv4 or ipv6"),
        };

        private InterfaceMatch ReadInterface(YamlNode node, string key)
        {
            var condition = ReadCondition(node, key);
            return Guard(condition.SingleNode, () => new InterfaceMatch(condition.Single, condition.Negated), key);
        }

        private ProtocolMatch ReadProtocol(YamlNode node)
        {
            var condition = ReadCondition(node, "protocol");
            return new ProtocolMatch(Guard(condition.SingleNode, () => IpProtocol.Parse(condition.Single), "protocol"), condition.Negated);
        }

        private AddressMatch ReadAddresses(YamlNode node, string key)
        {
            var condition = ReadCondition(node, key);
            if (condition.Node is YamlScalarNode && condition.Single.StartsWith('@'))
                return Guard(condition.SingleNode, () => AddressMatch.InSet(condition.Single[1..], condition.Negated), key);
            var prefixes = condition.Values.Select(v => (v.Node, Prefix: Guard(v.Node, () => IpPrefix.Parse(v.Text), key))).ToList();
            // A list of both families is the fault of its first address of the other family.
            var mixed = prefixes.FirstOrDefault(p => p.Prefix.Family != prefixes[0].Prefix.Family).Node;
            return Guard(mixed ?? condition.Node, () => new AddressMatch(prefixes.Select(p => p.Prefix), condition.Negated), key);
        }

        private PortMatch ReadPorts(YamlNode node, string key)
        {
            var condition = ReadCondition(node, key);
            if (condition.Node is YamlScalarNode && condition.Single.StartsWith('@'))
                return Guard(condition.SingleNode, () => PortMatch.InSet(condition.Single[1..], condition.Negated), key);
            var ranges = condition.Values.Select(v => Guard(v.Node, () => PortRange.Parse(v.Text, key), key)).ToList();
            return Guard(condition.Node, () => new PortMatch(ranges, condition.Negated), key);
        }

        /// <summary>syn; iptables' two lists "SYN,ACK,FIN,RST SYN"; or { mask: [...], set: [...] } (each a list or a comma-separated word).</summary>
        private TcpFlagsMatch ReadTcpFlags(YamlNode node)
        {
            const string key = "tcp-flags";
            bool negated = false;
            if (node is YamlMappingNode wrapper && Optional(wrapper, NotKey) is YamlMappingNode inner)
            {
                CheckKeys(wrapper, [NotKey], key, k => $"'{k}' is not a key of {key}: a mapping with not negates, as {key}: {{ not: VALUE }}");
                if (Optional(inner, NotKey) is not null) throw Error(inner, $"{key}: {{ not: {{ not: ... }} }} negates twice: write the condition once");
                (node, negated) = (inner, true);
            }
            if (node is YamlMappingNode map && Optional(map, NotKey) is null)
            {
                CheckKeys(map, TcpFlagsKeys, key);
                TcpFlags Flags(string part)
                {
                    var partNode = Required(map, part, key);
                    if (partNode is YamlSequenceNode list)
                        return list.Children.Aggregate(TcpFlags.None, (all, item) => all | Guard(item, () => TcpFlagNames.Parse(Scalar(item, part)), key));
                    var text = Scalar(partNode, part);
                    return Guard(partNode, () => TcpFlagNames.Parse(text), key);
                }
                var mask = Flags("mask");
                var set = Flags("set");
                return Guard(Required(map, "set", key), () => new TcpFlagsMatch(mask, set, negated), key);
            }
            var condition = ReadCondition(node, key);
            return Guard(condition.SingleNode, () => ParseTcpFlags(condition.Single, condition.Negated), key);
        }

        private static TcpFlagsMatch ParseTcpFlags(string text, bool negated)
        {
            if (text.Equals("syn", StringComparison.OrdinalIgnoreCase))
                return new TcpFlagsMatch(TcpFlagsMatch.Syn.Mask, TcpFlagsMatch.Syn.Set, negated);
            var lists = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (lists.Length != 2)
                throw new RulesetValidationException(
                    $"'{text}' is not a TCP flags condition: write syn, or iptables' two lists such as 'SYN,ACK,FIN,RST SYN' "
                    + "(the flags to look at, then those of them that must be set), or { mask: [...], set: [...] }", "tcp-flags");
            return new TcpFlagsMatch(TcpFlagNames.Parse(lists[0]), TcpFlagNames.Parse(lists[1]), negated);
        }

        /// <summary>A number, a range, or a name: ICMP's names with protocol icmp, ICMPv6's with protocol icmpv6.</summary>
        private RangeMatch ReadIcmpType(YamlNode node, ProtocolMatch? protocol)
        {
            const string key = "icmp-type";
            var condition = ReadCondition(node, key);
            var text = condition.Single;
            if (text.Length > 0 && char.IsAsciiDigit(text[0]))
                return Guard(condition.SingleNode, () => RangeMatch.Parse(text, 255, key, condition.Negated), key);
            if (protocol is not { Negated: false, Protocol.IsIcmp: true })
                throw Error(node, $"icmp-type needs protocol icmp or icmpv6{(protocol is null ? "" : $", not {protocol}")}: the names of the types differ between the two");
            var v6 = protocol.Protocol == IpProtocol.Icmpv6;
            return Guard(condition.SingleNode, () => RangeMatch.Exactly(IcmpTypes.Parse(text, v6), condition.Negated), key);
        }

        /// <summary>A value or a range "first-last" of 0 to <paramref name="max"/>, negatable.</summary>
        private RangeMatch ReadRange(YamlNode node, string key, uint max)
        {
            var condition = ReadCondition(node, key);
            return Guard(condition.SingleNode, () => RangeMatch.Parse(condition.Single, max, key, condition.Negated), key);
        }

        private FragmentMatch ReadFragment(YamlNode node)
        {
            var condition = ReadCondition(node, "fragment");
            return condition.Single switch
            {
                "first" => new FragmentMatch(FragmentKind.First, condition.Negated),
                "not-first" => new FragmentMatch(FragmentKind.NotFirst, condition.Negated),
                var other => throw Error(condition.SingleNode, $"fragment: '{other}' is not first or not-first"),
            };
        }

        /// <summary>"0x10" (or 16), or a value and a mask "0x10/0xff".</summary>
        private MarkMatch ReadMark(YamlNode node)
        {
            var condition = ReadCondition(node, "mark");
            var text = condition.Single;
            var slash = text.IndexOf('/');
            if (MarkNumber(slash < 0 ? text : text[..slash]) is not { } value
                || (slash < 0 ? uint.MaxValue : MarkNumber(text[(slash + 1)..])) is not { } mask)
                throw Error(condition.SingleNode,
                    $"mark: '{text}' is not a mark: write a number such as 0x10 or 16, or a value and a mask such as 0x10/0xff (each at most 0xffffffff)");
            // As New-BpfRule -Mark: a value with bits outside the mask is a mistake, since no packet could match it.
            if ((value & ~mask) != 0)
                throw Error(condition.SingleNode, $"mark: in '{text}' the value has bits outside the mask, so no packet could match");
            return new MarkMatch(value, mask, condition.Negated);
        }

        private static uint? MarkNumber(string text) =>
            text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? uint.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex) ? hex : null
                : uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number) ? number : null;

        /// <summary>States: established, a list [established, related], iptables' ESTABLISHED,RELATED; negated as "!new" or { not: [...] }.</summary>
        private CtStateMatch ReadCtState(YamlNode node)
        {
            const string key = "ct-state";
            var condition = ReadCondition(node, key);
            var states = condition.Values.Aggregate(CtStates.None, (all, v) => all | Guard(v.Node, () => CtStateNames.Parse(v.Text), key));
            return Guard(condition.Node, () => new CtStateMatch(states, condition.Negated), key);
        }

        private CtDirection ReadCtDirection(YamlNode node)
        {
            var condition = ReadCondition(node, "ct-direction");
            return Guard(condition.SingleNode, () => CtDirectionNames.Parse(condition.Single), "ct-direction");
        }

        /// <summary>"5/second", or { rate: 5/second, burst: 10 }.</summary>
        private LimitMatch ReadLimit(YamlNode node)
        {
            if (node is not YamlMappingNode map)
            {
                var condition = ReadCondition(node, "limit");
                return Guard(condition.SingleNode, () => LimitMatch.Parse(condition.Single), "limit");
            }
            CheckKeys(map, LimitKeys, "limit");
            var rateNode = Required(map, "rate", "limit");
            var rate = Scalar(rateNode, "rate");
            var burst = LimitMatch.DefaultBurst;
            var burstNode = Optional(map, "burst");
            if (burstNode is not null)
            {
                var text = Scalar(burstNode, "burst");
                if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out burst))
                    throw Error(burstNode, $"burst: '{text}' is not a whole number from 1 to 1000000");
            }
            try
            {
                return LimitMatch.Parse(rate, burst);
            }
            catch (RulesetValidationException e)
            {
                throw Error(e.Field == "burst" && burstNode is not null ? burstNode : rateNode, $"limit: {e.Message}", e);
            }
        }
    }
}
