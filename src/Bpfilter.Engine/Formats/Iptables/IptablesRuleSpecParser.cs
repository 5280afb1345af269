using System.Globalization;
using System.Text;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>
/// Reads one rule specification, argument by argument, as iptables does: options of a match module belong to the
/// module loaded last (-m NAME, or the protocol's own module after -p), options of a target to the target (-j NAME),
/// and "!" negates the option after it. <see cref="IptablesRuleSpec"/> describes what is read.
/// </summary>
internal sealed class IptablesRuleSpecParser(IReadOnlyList<string> args, IpFamily family)
{
    /// <summary>The options of each match module and target bpfilter reads (long aliases are in <see cref="Aliases"/>).</summary>
    private static readonly Dictionary<string, string[]> ModuleOptions = new(StringComparer.Ordinal)
    {
        ["tcp"] = ["--sport", "--dport", "--tcp-flags", "--syn", "--tcp-option"],
        ["udp"] = ["--sport", "--dport"],
        ["icmp"] = ["--icmp-type"],
        ["icmp6"] = ["--icmpv6-type"],
        ["multiport"] = ["--sports", "--dports", "--ports"],
        ["iprange"] = ["--src-range", "--dst-range"],
        ["length"] = ["--length"],
        ["dscp"] = ["--dscp", "--dscp-class"],
        ["ttl"] = ["--ttl-eq", "--ttl-lt", "--ttl-gt"],
        ["hl"] = ["--hl-eq", "--hl-lt", "--hl-gt"],
        ["mark"] = ["--mark"],
        ["limit"] = ["--limit", "--limit-burst"],
        ["comment"] = ["--comment"],
        ["conntrack"] = ["--ctstate", "--ctdir"],
        ["state"] = ["--state"],
        ["REJECT"] = ["--reject-with"],
        ["LOG"] = ["--log-prefix", "--log-level", "--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid", "--log-macdecode"],
    };

    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["--source-port"] = "--sport", ["--destination-port"] = "--dport", ["--source-ports"] = "--sports", ["--destination-ports"] = "--dports",
        ["--source"] = "-s", ["--src"] = "-s", ["--destination"] = "-d", ["--dst"] = "-d", ["--in-interface"] = "-i",
        ["--out-interface"] = "-o", ["--protocol"] = "-p", ["--fragment"] = "-f", ["--match"] = "-m", ["--jump"] = "-j", ["--goto"] = "-g",
        ["--set-counters"] = "-c",
    };

    /// <summary>Options that "!" may precede.</summary>
    private static readonly HashSet<string> Negatable = new(StringComparer.Ordinal)
    {
        "-s", "-d", "-i", "-o", "-p", "-f", "--sport", "--dport", "--tcp-flags", "--syn", "--icmp-type", "--icmpv6-type", "--sports", "--dports",
        "--ports", "--src-range", "--dst-range", "--length", "--dscp", "--dscp-class", "--ttl-eq", "--hl-eq", "--mark", "--ctstate", "--state",
    };

    private static readonly string SupportedModules = "tcp, udp, icmp, icmp6, multiport, iprange, length, dscp, ttl, hl, mark, limit, comment, conntrack and state";

    private sealed class Module(string name, int at)
    {
        public string Name { get; } = name;
        public int At { get; } = at;
        public HashSet<string> Used { get; } = new(StringComparer.Ordinal);
    }

    private sealed record Addresses(List<IpPrefix> Prefixes, bool Negated, bool FromRange, int At);

    private readonly bool _v6 = family == IpFamily.Ipv6;
    private readonly List<Module> _modules = [];
    private readonly Dictionary<string, int> _setAt = new(StringComparer.Ordinal);
    private int _next;
    private byte _portProtocol;

    private Addresses? _source, _destination;
    private InterfaceMatch? _in, _out;
    private ProtocolMatch? _protocol;
    private int _protocolAt = -1;
    private PortMatch? _sourcePort, _destinationPort;
    private TcpFlagsMatch? _tcpFlags;
    private RangeMatch? _icmpType, _icmpCode, _length, _dscp, _ttl, _hopLimit;
    private FragmentMatch? _fragment;
    private MarkMatch? _mark;
    private CtStateMatch? _ctState;
    private CtDirection? _ctDirection;
    private uint? _limitCount, _limitBurst;
    private RateUnit _limitUnit;
    private string? _comment;
    private string? _target;
    private bool _goto;
    private RejectWith? _rejectWith;
    private int _rejectAt;
    private string? _logPrefix;

    public Rule Parse(int start)
    {
        _next = start;
        while (_next < args.Count)
        {
            bool negated = false;
            if (args[_next] == "!")
            {
                negated = true;
                if (++_next >= args.Count) throw Error(_next - 1, "!", "'!' must be followed by the option it negates");
                if (args[_next] == "!") throw Error(_next, "!", "'!' is given twice");
            }
            int at = _next++;
            var given = args[at];
            var option = Aliases.TryGetValue(given, out var canonical) ? canonical : given;
            if (negated && !Negatable.Contains(option)) throw Error(at, given, $"{given} cannot be negated with '!'");
            ReadOption(option, given, at, negated);
        }
        return Build();
    }

    private void ReadOption(string option, string given, int at, bool negated)
    {
        switch (option)
        {
            case "-s":
                Once("source", at, given);
                _source = ReadAddresses(given, at, negated);
                return;
            case "-d":
                Once("destination", at, given);
                _destination = ReadAddresses(given, at, negated);
                return;
            case "-i":
                Once("in-interface", at, given);
                _in = ReadInterface(given, at, negated);
                return;
            case "-o":
                Once("out-interface", at, given);
                _out = ReadInterface(given, at, negated);
                return;
            case "-p":
                ReadProtocol(given, at, negated);
                return;
            case "-f":
                if (_v6) throw Error(at, given, "-f is IPv4's: ip6tables matches fragments with -m frag, which bpfilter does not read");
                Once("fragment", at, given);
                _fragment = new FragmentMatch(FragmentKind.NotFirst, negated);
                return;
            case "-m":
                LoadModule(Value(at, given), at + 1);
                return;
            case "-j" or "-g":
                ReadTarget(option, given, at);
                return;
            case "-c":
                // Counters (iptables-restore's -c PACKETS BYTES) say what a rule has counted, not what it matches.
                for (int i = 0; i < 2; i++)
                {
                    var count = Value(at, given);
                    if (!ulong.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                        throw Error(_next - 1, given, $"'{count}' is not a counter: -c takes two numbers, packets and bytes");
                }
                return;
        }
        if (!option.StartsWith("--", StringComparison.Ordinal) || option.Length == 2)
            throw Error(at, given, option.StartsWith('-')
                ? $"{given} is not an option bpfilter reads (it reads -s, -d, -i, -o, -p, -f, -m, -j, -g and the options of the modules {SupportedModules})"
                : $"'{given}' is not an option: a value without an option before it (a missing quote around a comment?)");
        ReadModuleOption(option, given, at, negated);
    }

    private void LoadModule(string name, int at)
    {
        switch (name)
        {
            case "icmp" when _v6:
                throw Error(at, "-m", "-m icmp is IPv4's: ip6tables matches ICMPv6 with -p icmpv6 -m icmp6 --icmpv6-type");
            case "icmp6" when !_v6:
                throw Error(at, "-m", "-m icmp6 is IPv6's: iptables matches ICMP with -p icmp -m icmp --icmp-type");
            case "ttl" when _v6:
                throw Error(at, "-m", "-m ttl is IPv4's: ip6tables matches the hop limit with -m hl");
            case "hl" when !_v6:
                throw Error(at, "-m", "-m hl is IPv6's: iptables matches the TTL with -m ttl");
            case "REJECT" or "LOG":
                throw Error(at, "-m", $"{name} is a target: write -j {name}");
        }
        if (!ModuleOptions.ContainsKey(name))
            throw Error(at, "-m", $"-m {name}: the match module '{name}' is not supported (bpfilter reads {SupportedModules})");
        _modules.Add(new Module(name, at));
    }

    private void ReadTarget(string option, string given, int at)
    {
        var name = Value(at, given);
        if (_target is not null) throw Error(at, given, $"the rule has a target already ({(_goto ? "-g" : "-j")} {_target} at argument {_setAt["target"] + 1})");
        _setAt["target"] = at;
        if (option == "-g")
        {
            if (IptablesNames.BuiltInTargets.Contains(name) || IptablesNames.UnsupportedTargets.Contains(name))
                throw Error(at + 1, given, $"-g goes to a user chain, not the target {name}: write -j {name}");
            _goto = true;
        }
        else if (IptablesNames.UnsupportedTargets.Contains(name))
            throw Error(at + 1, given, $"-j {name}: the target {name} is not supported (bpfilter runs ACCEPT, DROP, REJECT, RETURN, LOG and jumps to user chains)");
        else if (name is "REJECT" or "LOG")
            _modules.Add(new Module(name, at + 1));
        if (!IptablesNames.BuiltInTargets.Contains(name))
        {
            try
            {
                Names.CheckChainName(name);
            }
            catch (RulesetValidationException e)
            {
                throw Error(at + 1, given, $"{given} {name}: {e.Message}");
            }
        }
        _target = name;
    }

    private void ReadModuleOption(string option, string given, int at, bool negated)
    {
        var owners = ModuleOptions.Where(m => m.Value.Contains(option)).Select(m => m.Key).ToList();
        if (owners.Count == 0)
            throw Error(at, given, $"{given} is not an option bpfilter reads (it reads -s, -d, -i, -o, -p, -f, -m, -j, -g and the options of the modules {SupportedModules})");
        var module = _modules.LastOrDefault(m => owners.Contains(m.Name)) ?? ImpliedModule(owners)
            ?? throw Error(at, given, NeedsModule(given, owners));
        if (!module.Used.Add(option)) throw Error(at, given, $"{given} is given twice for -m {module.Name}");
        switch (module.Name)
        {
            case "tcp" or "udp":
                _portProtocol = module.Name == "tcp" ? (byte)6 : (byte)17;
                ReadTransportOption(option, given, at, negated);
                return;
            case "icmp" or "icmp6":
                ReadIcmp(given, at, negated);
                return;
            case "multiport":
                _portProtocol = _protocol is { Negated: false } p ? p.Protocol.Number : (byte)0;
                ReadMultiport(module, option, given, at, negated);
                return;
            case "iprange":
                ReadRange(option, given, at, negated);
                return;
            case "length":
                Once("length", at, given);
                _length = ReadValueRange(Value(at, given), 65535, at + 1, given, negated);
                return;
            case "dscp":
                ReadDscp(module, option, given, at, negated);
                return;
            case "ttl" or "hl":
                ReadHops(module, option, given, at, negated);
                return;
            case "mark":
                ReadMark(given, at, negated);
                return;
            case "conntrack" or "state":
                ReadConntrack(option, given, at, negated);
                return;
            case "limit":
                ReadLimit(option, given, at);
                return;
            case "comment":
                ReadComment(given, at);
                return;
            case "REJECT":
                var with = Value(at, given);
                if (!IptablesNames.TryParseReject(with, family, out var reply))
                    throw Error(at + 1, given, $"'{with}' is not a reply bpfilter sends: use {string.Join(", ", IptablesNames.RejectNames(family))}");
                _rejectWith = reply;
                _rejectAt = at + 1;
                return;
            case "LOG":
                ReadLogOption(option, given, at);
                return;
        }
    }

    /// <summary>The protocol's own module (tcp after -p tcp), which iptables loads when one of its options comes.</summary>
    private Module? ImpliedModule(List<string> owners)
    {
        if (_protocol is not { Negated: false } p) return null;
        var name = p.Protocol.Number switch
        {
            6 => "tcp",
            17 => "udp",
            1 when !_v6 => "icmp",
            58 when _v6 => "icmp6",
            _ => null,
        };
        if (name is null || !owners.Contains(name)) return null;
        var module = new Module(name, _protocolAt);
        _modules.Add(module);
        return module;
    }

    private string NeedsModule(string given, List<string> owners)
    {
        var negatedProtocol = _protocol is { Negated: true } ? " (not a negated protocol)" : "";
        if (owners.Contains("udp")) return $"{given} needs -p tcp or -p udp before it{negatedProtocol}";
        if (owners.Contains("tcp")) return $"{given} needs -p tcp before it{negatedProtocol}";
        if (owners.Contains("icmp"))
            return _v6 ? $"{given} is IPv4's: ip6tables matches ICMPv6 with -p icmpv6 --icmpv6-type" : $"{given} needs -p icmp before it{negatedProtocol}";
        if (owners.Contains("icmp6"))
            return _v6 ? $"{given} needs -p icmpv6 before it{negatedProtocol}" : $"{given} is IPv6's: iptables matches ICMP with -p icmp --icmp-type";
        if (owners.Contains("REJECT") || owners.Contains("LOG")) return $"{given} is an option of -j {owners[0]}, which the rule does not have before it";
        if (owners.Contains("ttl") && _v6) return $"{given} is IPv4's: ip6tables matches the hop limit with -m hl --hl-eq, --hl-lt or --hl-gt";
        if (owners.Contains("hl") && !_v6) return $"{given} is IPv6's: iptables matches the TTL with -m ttl --ttl-eq, --ttl-lt or --ttl-gt";
        return $"{given} needs -m {owners[0]} before it";
    }

    private Addresses ReadAddresses(string given, int at, bool negated)
    {
        var text = Value(at, given);
        var items = text.Split(',');
        if (negated && items.Length > 1)
            throw Error(at + 1, given, $"'!' cannot negate a list of addresses (iptables refuses it too): write one rule per address or use -m iprange ! --{(given is "-s" or "--source" or "--src" ? "src" : "dst")}-range");
        var prefixes = items.Select(item => ParsePrefix(item, text, at + 1, given)).ToList();
        if (prefixes is [{ Length: 0 }] && negated) throw Error(at + 1, given, $"! {given} {text} never matches");
        return new Addresses(prefixes, negated, false, at);
    }

    private IpPrefix ParsePrefix(string item, string text, int at, string given)
    {
        var expected = _v6 ? "an IPv6 address or network such as 2001:db8::/32" : "an IPv4 address or network such as 10.0.0.0/8";
        if (item.Length == 0) throw Error(at, given, $"'{text}' has an empty item: give {expected}, or several separated by commas");
        var slash = item.IndexOf('/');
        var addressText = slash < 0 ? item : item[..slash];
        IpPrefix host;
        try
        {
            host = IpPrefix.Parse(addressText);
        }
        catch (RulesetValidationException)
        {
            throw Error(at, given, $"'{item}' is not {expected} (bpfilter does not look up host names)");
        }
        if (host.Family != family)
            throw Error(at, given, $"'{item}' is an {(_v6 ? "IPv4" : "IPv6")} address; {(_v6 ? "ip6tables" : "iptables")} rules hold {(_v6 ? "IPv6" : "IPv4")} addresses");
        int length = host.Bits;
        if (slash >= 0)
        {
            var lengthText = item[(slash + 1)..];
            if (!_v6 && lengthText.Contains('.'))
                length = MaskLength(lengthText) ?? throw Error(at, given, $"'{item}': {lengthText} is not a netmask of leading ones (such as 255.255.0.0); bpfilter matches prefixes only");
            else if (!int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > host.Bits)
                throw Error(at, given, $"'{item}': the prefix length must be 0 to {host.Bits}");
        }
        // iptables clears the host bits of a network (10.0.0.1/8 is 10.0.0.0/8), and so does this.
        return new IpPrefix(family, host.Address & ~AddressRanges.HostMask(host.Bits, length) & AllOnes(host.Bits), length);
    }

    private static UInt128 AllOnes(int bits) => bits == 32 ? uint.MaxValue : UInt128.MaxValue;

    private static int? MaskLength(string mask)
    {
        IpPrefix parsed;
        try
        {
            parsed = IpPrefix.Parse(mask);
        }
        catch (RulesetValidationException)
        {
            return null;
        }
        if (parsed.Family != IpFamily.Ipv4) return null;
        var bits = (uint)parsed.Address;
        int ones = System.Numerics.BitOperations.LeadingZeroCount(~bits);
        return ones == 32 || bits << ones == 0 ? ones : null;
    }

    private InterfaceMatch ReadInterface(string given, int at, bool negated)
    {
        var name = Value(at, given);
        if (name.EndsWith('+'))
            throw Error(at + 1, given, $"'{name}': a trailing '+' is iptables' wildcard for every interface whose name starts so; bpfilter matches whole interface names only");
        try
        {
            return new InterfaceMatch(name, negated);
        }
        catch (RulesetValidationException e)
        {
            throw Error(at + 1, given, e.Message);
        }
    }

    private void ReadProtocol(string given, int at, bool negated)
    {
        var text = Value(at, given);
        if (_protocolAt >= 0) throw Error(at, given, $"the protocol is given twice (first at argument {_protocolAt + 1})");
        _protocolAt = at;
        if (!IptablesNames.TryParseProtocol(text, out var number))
            throw Error(at + 1, given, $"'{text}' is not a protocol: use a name such as tcp, udp, icmp{(_v6 ? "v6" : "")}, esp or gre, or a number from 0 to 255");
        if (number is null)
        {
            if (negated) throw Error(at + 1, given, $"! {given} {text} never matches: every packet has a protocol");
            return;
        }
        _protocol = new ProtocolMatch(new IpProtocol(number.Value), negated);
    }

    private void ReadTransportOption(string option, string given, int at, bool negated)
    {
        switch (option)
        {
            case "--sport":
                Once("source-port", at, given);
                _sourcePort = new PortMatch([ReadPortRange(Value(at, given), at + 1, given, open: true)], negated);
                return;
            case "--dport":
                Once("destination-port", at, given);
                _destinationPort = new PortMatch([ReadPortRange(Value(at, given), at + 1, given, open: true)], negated);
                return;
            case "--syn":
                Once("tcp-flags", at, given);
                _tcpFlags = negated ? new TcpFlagsMatch(TcpFlagsMatch.Syn.Mask, TcpFlagsMatch.Syn.Set, true) : TcpFlagsMatch.Syn;
                return;
            case "--tcp-flags":
                Once("tcp-flags", at, given);
                var mask = ReadFlags(Value(at, given), at + 1, given);
                var set = ReadFlags(Value(at, given), at + 2, given);
                if ((set & ~mask) != 0)
                    throw Error(at + 2, given, $"{IptablesNames.FormatTcpFlags(set & ~mask)} must be set but is not in the mask {IptablesNames.FormatTcpFlags(mask)}: the rule would never match");
                _tcpFlags = new TcpFlagsMatch(mask, set, negated);
                return;
            default:
                throw Error(at, given, $"{given} (TCP options) is not supported");
        }
    }

    private TcpFlags ReadFlags(string text, int at, string given) =>
        IptablesNames.ParseTcpFlags(text, out var bad)
        ?? throw Error(at, given, $"'{bad}' is not a TCP flag iptables knows: use FIN, SYN, RST, PSH, ACK, URG, ALL or NONE, joined by commas");

    private PortRange ReadPortRange(string text, int at, string given, bool open)
    {
        var colon = text.IndexOf(':');
        if (colon < 0) return new PortRange(ReadPort(text, text, at, given), ReadPort(text, text, at, given));
        var firstText = text[..colon];
        var lastText = text[(colon + 1)..];
        if (!open && (firstText.Length == 0 || lastText.Length == 0))
            throw Error(at, given, $"'{text}': a range in a port list needs both ends, as in 1000:2000");
        var first = firstText.Length == 0 ? (ushort)0 : ReadPort(firstText, text, at, given);
        var last = lastText.Length == 0 ? ushort.MaxValue : ReadPort(lastText, text, at, given);
        if (last < first) throw Error(at, given, $"the port range '{text}' ends before it starts");
        return new PortRange(first, last);
    }

    /// <summary>A port number, or a service name of /etc/services for the protocol (as iptables looks them up).</summary>
    private ushort ReadPort(string part, string text, int at, string given) =>
        ParseNumber(part, ushort.MaxValue) is { } port ? (ushort)port
            : !char.IsAsciiDigit(part[0]) && IptablesNameLookup.System.TryParseService(part, _portProtocol, out var service) ? service
            : throw Error(at, given, $"'{text}' is not a port number or range from 0 to 65535, or a service name /etc/services gives {(_portProtocol == 17 ? "UDP" : "TCP")}");

    private void ReadIcmp(string given, int at, bool negated)
    {
        Once("icmp-type", at, given);
        var text = Value(at, given);
        if (!_v6 && (text == "any" || text.Split('/')[0] == "255"))
        {
            // ICMP type 255 is iptables' "any type": no condition beyond the protocol.
            if (negated) throw Error(at + 1, given, $"! {given} {text} never matches");
            return;
        }
        if (!IptablesNames.TryParseIcmp(text, family, out var icmp))
            throw Error(at + 1, given, $"'{text}' is not an {(_v6 ? "ICMPv6" : "ICMP")} type: use a name such as echo-request, a number, or TYPE/CODE");
        if (negated && icmp.Code is not null)
            throw Error(at + 1, given, $"! {given} {text}: the rules model cannot negate a type and a code together; negate the type alone or write the rule for the type and code you allow");
        _icmpType = RangeMatch.Exactly(icmp.Type, negated);
        _icmpCode = icmp.Code is { } code ? RangeMatch.Exactly(code) : null;
    }

    private void ReadMultiport(Module module, string option, string given, int at, bool negated)
    {
        var other = module.Used.FirstOrDefault(u => u != option);
        if (other is not null) throw Error(at, given, $"{given} and {other} cannot share one -m multiport (iptables refuses it too): write -m multiport again");
        var text = Value(at, given);
        var ranges = text.Split(',').Select(item => item.Length == 0
            ? throw Error(at + 1, given, $"'{text}' has an empty item")
            : ReadPortRange(item, at + 1, given, open: false)).ToList();
        switch (option)
        {
            case "--sports":
                Once("source-port", at, given);
                _sourcePort = new PortMatch(ranges, negated);
                return;
            case "--dports":
                Once("destination-port", at, given);
                _destinationPort = new PortMatch(ranges, negated);
                return;
            default:
                if (!negated)
                    throw Error(at, given, "--ports matches a packet whose source or destination port is in the list, and a rule's conditions must all hold: "
                        + "write two rules, one with --sports and one with --dports");
                // Neither port in the list: both conditions hold, which the model says exactly.
                Once("source-port", at, given);
                Once("destination-port", at, given);
                _sourcePort = new PortMatch(ranges, true);
                _destinationPort = new PortMatch(ranges, true);
                return;
        }
    }

    private void ReadRange(string option, string given, int at, bool negated)
    {
        bool source = option == "--src-range";
        Once(source ? "source" : "destination", at, given);
        var text = Value(at, given);
        var dash = text.IndexOf('-');
        var parts = dash < 0 ? [text] : new[] { text[..dash], text[(dash + 1)..] };
        var notARange = Error(at + 1, given,
            $"'{text}' is not a range of {(_v6 ? "IPv6" : "IPv4")} addresses such as {(_v6 ? "2001:db8::1-2001:db8::9" : "10.0.0.1-10.0.0.9")}");
        var ends = parts.Select(p =>
        {
            IpPrefix address;
            try
            {
                address = IpPrefix.Parse(p);
            }
            catch (RulesetValidationException)
            {
                throw notARange;
            }
            return address.Family == family && !p.Contains('/') ? address.Address : throw notARange;
        }).ToList();
        var (first, last) = (ends[0], ends[^1]);
        if (last < first) throw Error(at + 1, given, $"the range '{text}' ends before it starts, so it never matches");
        var addresses = new Addresses(AddressRanges.ToPrefixes(family, first, last), negated, true, at);
        if (negated && addresses.Prefixes is [{ Length: 0 }]) throw Error(at + 1, given, $"! {given} {text} never matches");
        if (source) _source = addresses;
        else _destination = addresses;
    }

    /// <summary>"64", "100:1500", ":1500" (from 0) or "100:" (to <paramref name="max"/>), as -m length reads them.</summary>
    private RangeMatch ReadValueRange(string text, uint max, int at, string given, bool negated)
    {
        var colon = text.IndexOf(':');
        var firstText = colon < 0 ? text : text[..colon];
        var lastText = colon < 0 ? text : text[(colon + 1)..];
        uint? first = firstText.Length == 0 ? 0 : ParseNumber(firstText, max);
        uint? last = lastText.Length == 0 ? max : ParseNumber(lastText, max);
        if (first is null || last is null || colon >= 0 && firstText.Length == 0 && lastText.Length == 0)
            throw Error(at, given, $"'{text}' is not a value or range (FIRST:LAST) from 0 to {max}");
        if (last < first) throw Error(at, given, $"the range '{text}' ends before it starts");
        return new RangeMatch(first.Value, last.Value, negated);
    }

    private void ReadDscp(Module module, string option, string given, int at, bool negated)
    {
        if (module.Used.Count > 1) throw Error(at, given, "--dscp and --dscp-class cannot share one -m dscp");
        Once("dscp", at, given);
        var text = Value(at, given);
        uint value;
        if (option == "--dscp-class")
        {
            if (!IptablesNames.TryParseDscpClass(text, out var dscpClass))
                throw Error(at + 1, given, $"'{text}' is not a DSCP class: use CS0 to CS7, AF11 to AF43, EF or BE");
            value = dscpClass;
        }
        else value = ParseNumber(text, 63) ?? throw Error(at + 1, given, $"'{text}' is not a DSCP value from 0 to 63 (or 0x00 to 0x3f)");
        _dscp = RangeMatch.Exactly(value, negated);
    }

    private void ReadHops(Module module, string option, string given, int at, bool negated)
    {
        var field = module.Name == "ttl" ? "ttl" : "hop-limit";
        if (module.Used.Count > 1) throw Error(at, given, $"one -m {module.Name} takes one of --{module.Name}-eq, --{module.Name}-lt and --{module.Name}-gt");
        Once(field, at, given);
        var text = Value(at, given);
        var value = ParseNumber(text, 255) ?? throw Error(at + 1, given, $"'{text}' is not a value from 0 to 255");
        RangeMatch range = option[^2..] switch
        {
            "eq" => RangeMatch.Exactly(value, negated),
            "lt" => value > 0 ? new RangeMatch(0, value - 1) : throw Error(at + 1, given, $"{given} 0 never matches"),
            _ => value < 255 ? new RangeMatch(value + 1, 255) : throw Error(at + 1, given, $"{given} 255 never matches"),
        };
        if (field == "ttl") _ttl = range;
        else _hopLimit = range;
    }

    private void ReadMark(string given, int at, bool negated)
    {
        Once("mark", at, given);
        var text = Value(at, given);
        var slash = text.IndexOf('/');
        var value = ParseNumber(slash < 0 ? text : text[..slash], uint.MaxValue);
        var mask = slash < 0 ? uint.MaxValue : ParseNumber(text[(slash + 1)..], uint.MaxValue);
        if (value is null || mask is null) throw Error(at + 1, given, $"'{text}' is not a mark: write VALUE or VALUE/MASK, in decimal or 0x hexadecimal");
        if ((value & ~mask) != 0) throw Error(at + 1, given, $"the mark {text} has bits outside its mask, so it never matches");
        _mark = new MarkMatch(value.Value, mask.Value, negated);
    }

    /// <summary>-m conntrack --ctstate (or -m state --state) a comma list, negatable; --ctdir ORIGINAL or REPLY, not negatable.</summary>
    private void ReadConntrack(string option, string given, int at, bool negated)
    {
        var text = Value(at, given);
        try
        {
            if (option == "--ctdir")
            {
                if (negated) throw Error(at, given, "--ctdir cannot be negated: write the other direction");
                Once("ct-direction", at, given);
                _ctDirection = CtDirectionNames.Parse(text);
                return;
            }
            Once("ct-state", at, given);
            _ctState = new CtStateMatch(CtStateNames.Parse(text), negated);
        }
        catch (RulesetValidationException e)
        {
            throw Error(at + 1, given, e.Message);
        }
    }

    private void ReadLimit(string option, string given, int at)
    {
        Once(option == "--limit" ? "limit" : "burst", at, given);
        var text = Value(at, given);
        if (option == "--limit")
        {
            if (!IptablesNames.TryParseRate(text, out var count, out var unit))
                throw Error(at + 1, given, $"'{text}' is not a rate: write such as 10/second, 3/minute, 5/hour or 1/day");
            if (count > 10_000UL * (ulong)unit)
                throw Error(at + 1, given, $"the rate {text} is faster than iptables' limit of 10000/second");
            _limitCount = count;
            _limitUnit = unit;
        }
        else _limitBurst = ParseNumber(text, 10_000) is { } burst and > 0 ? burst
            : throw Error(at + 1, given, $"'{text}' is not a burst from 1 to 10000");
    }

    private void ReadComment(string given, int at)
    {
        Once("name", at, given);
        var text = Value(at, given, text: true);
        if (Encoding.UTF8.GetByteCount(text) > IptablesRuleSpec.MaxCommentBytes)
            throw Error(at + 1, given, $"the comment is longer than iptables' {IptablesRuleSpec.MaxCommentBytes} bytes");
        var name = text.Trim(' ');
        if (name.Length == 0) return;
        try
        {
            Names.CheckRuleName(name);
        }
        catch (RulesetValidationException)
        {
            throw Error(at + 1, given, "the comment becomes the rule's name, and a name cannot hold control characters such as tabs");
        }
        _comment = name;
    }

    private void ReadLogOption(string option, string given, int at)
    {
        switch (option)
        {
            case "--log-prefix":
                var prefix = Value(at, given, text: true);
                if (Encoding.UTF8.GetByteCount(prefix) > IptablesRuleSpec.MaxLogPrefixBytes)
                    throw Error(at + 1, given, $"the log prefix is longer than iptables' {IptablesRuleSpec.MaxLogPrefixBytes} bytes (iptables would cut it short)");
                if (prefix.Any(char.IsControl)) throw Error(at + 1, given, "a log prefix cannot hold control characters");
                _logPrefix = prefix;
                return;
            case "--log-level":
                var level = Value(at, given);
                // iptables stores no level when it is the default, warning (4), and prints none: so reading it changes nothing.
                if (level is not ("4" or "warning" or "warn"))
                    throw Error(at + 1, given, $"--log-level {level}: bpfilter's log has no levels; only the default, warning (4), reads without changing what the rule does");
                return;
            default:
                throw Error(at, given, $"{given} is not supported: bpfilter's log records the packet with the prefix only");
        }
    }

    private Rule Build()
    {
        foreach (var module in _modules)
        {
            var needs = module.Name switch
            {
                "tcp" => Needs(6),
                "udp" => Needs(17),
                "icmp" => Needs(1),
                "icmp6" => Needs(58),
                "multiport" when _protocol is not { Negated: false, Protocol.HasPorts: true } => "-m multiport needs -p tcp or -p udp before it (bpfilter matches the ports of TCP and UDP)",
                _ => null,
            };
            if (needs is not null) throw Error(module.At, "-m", needs);
        }
        foreach (var name in new[] { "iprange", "length", "dscp", "ttl", "hl", "mark", "comment", "multiport" })
        {
            if (_modules.FirstOrDefault(m => m.Name == name && m.Used.Count == 0) is { } empty)
                throw Error(empty.At, "-m", $"-m {name} needs one of its options ({string.Join(", ", ModuleOptions[name])})");
        }
        var limits = _modules.Where(m => m.Name == "limit").ToList();
        if (limits.Count > 1) throw Error(limits[1].At, "-m", "the rule has two -m limit: bpfilter's rules have one limit each");
        LimitMatch? limit = null;
        if (limits.Count == 1)
        {
            // iptables' defaults: 3/hour, burst 5.
            limit = new LimitMatch(_limitCount ?? 3, _limitCount is null ? RateUnit.Hour : _limitUnit, _limitBurst ?? LimitMatch.DefaultBurst);
        }
        var verdict = BuildVerdict();
        var expansion = IptablesRuleSpec.ExpansionProblem(
            _source is { FromRange: false } s ? s.Prefixes : [], _destination is { FromRange: false } d ? d.Prefixes : [], limit is not null, verdict);
        if (expansion is not null)
        {
            var listAt = (_source is { FromRange: false, Prefixes.Count: > 1 } ? _source : _destination)!.At;
            throw Error(listAt + 1, args[listAt], expansion);
        }
        var match = new Match
        {
            Family = family,
            InInterface = _in,
            OutInterface = _out,
            Source = Condition(_source),
            Destination = Condition(_destination),
            Protocol = _protocol,
            SourcePort = _sourcePort,
            DestinationPort = _destinationPort,
            TcpFlags = _tcpFlags,
            IcmpType = _icmpType,
            IcmpCode = _icmpCode,
            Length = _length,
            Fragment = _fragment,
            Dscp = _dscp,
            Ttl = _ttl,
            HopLimit = _hopLimit,
            Mark = _mark,
            CtState = _ctState,
            CtDirection = _ctDirection,
            Limit = limit,
        };
        try
        {
            return new Rule(_comment, match, verdict);
        }
        catch (RulesetValidationException e)
        {
            throw Error(e.Field is { } field && _setAt.TryGetValue(field, out var at) ? at : 0, null, e.Message);
        }
    }

    private string? Needs(byte protocol) =>
        _protocol is { Negated: false } p && p.Protocol.Number == protocol ? null
            : $"-m {(protocol switch { 6 => "tcp", 17 => "udp", 1 => "icmp", _ => "icmp6" })} needs -p {(protocol switch { 6 => "tcp", 17 => "udp", 1 => "icmp", _ => "icmpv6" })} before it";

    /// <summary>An un-negated 0.0.0.0/0 (or ::/0) alone is every address of the family: no condition, as in iptables.</summary>
    private static AddressMatch? Condition(Addresses? addresses) =>
        addresses is null || addresses is { Negated: false, Prefixes: [{ Length: 0 }] } ? null : new AddressMatch(addresses.Prefixes, addresses.Negated);

    private Verdict BuildVerdict()
    {
        if (_target is null) return Verdict.Continue;
        if (_goto) return Verdict.Goto(_target);
        switch (_target)
        {
            case "ACCEPT": return Verdict.Accept;
            case "DROP": return Verdict.Drop;
            case "RETURN": return Verdict.Return;
            case "LOG": return Verdict.Log(_logPrefix);
            case "REJECT":
                // iptables' REJECT answers with port unreachable unless told otherwise.
                var with = _rejectWith ?? RejectWith.PortUnreachable;
                if (with == RejectWith.TcpReset && _protocol is not { Negated: false, Protocol.Number: 6 })
                    throw Error(_rejectAt, "--reject-with", "--reject-with tcp-reset needs -p tcp (iptables refuses it too)");
                return Verdict.Reject(with);
            default:
                return Verdict.Jump(_target);
        }
    }

    /// <summary>
    /// The value after the option at <paramref name="at"/>; each call takes the next argument. A lone "!" is a value
    /// only of a text option (a comment "!"); elsewhere it is iptables' old negation after the option, which it refuses.
    /// </summary>
    private string Value(int at, string given, bool text = false)
    {
        if (_next >= args.Count) throw Error(at, given, $"{given} needs a value");
        var value = args[_next++];
        if (value == "!" && !text) throw Error(_next - 1, given, $"'!' goes before the option it negates: write ! {given} VALUE");
        return value;
    }

    private void Once(string field, int at, string given)
    {
        if (_setAt.TryGetValue(field, out var first))
            throw Error(at, given, field == "name"
                ? $"{given}: the rule's name is already given at argument {first + 1} (by {args[first]}); its comment is its name, and a rule has one"
                : $"{given}: the rule's {field} is already given at argument {first + 1} (by {args[first]}); bpfilter's rules have one {field} condition");
        _setAt[field] = at;
    }

    /// <summary>A number as iptables reads it (strtoul with base 0): decimal, 0x hexadecimal or 0-prefixed octal.</summary>
    private static uint? ParseNumber(string text, uint max)
    {
        ulong value;
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(text[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && text.Length > 2
            : text.Length > 1 && text[0] == '0'
                ? TryOctal(text[1..], out value)
                : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return ok && value <= max ? (uint)value : null;
    }

    private static bool TryOctal(string digits, out ulong value)
    {
        value = 0;
        foreach (var c in digits)
        {
            if (c is < '0' or > '7' || value > uint.MaxValue) return false;
            value = value * 8 + (ulong)(c - '0');
        }
        return true;
    }

    private IptablesRuleSpecException Error(int at, string? option, string reason) => new(Math.Min(at, Math.Max(0, args.Count - 1)), option, reason);
}
