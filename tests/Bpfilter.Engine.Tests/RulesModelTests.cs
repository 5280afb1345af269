using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

public sealed class RulesModelTests
{
    private static Chain ChainOn(string name, string interfaceName, params Rule[] rules) =>
        new(name, Hook.Xdp, interfaceName, Verdict.Accept, rules);

    // --- IpPrefix ------------------------------------------------------------------------------------

    [Theory]
    [InlineData("10.0.0.1", 0x0a000001u, 32, "10.0.0.1")]
    [InlineData("10.0.0.0/8", 0x0a000000u, 8, "10.0.0.0/8")]
    [InlineData("0.0.0.0/0", 0u, 0, "0.0.0.0/0")]
    [InlineData("255.255.255.255", 0xffffffffu, 32, "255.255.255.255")]
    [InlineData("192.168.1.128/25", 0xc0a80180u, 25, "192.168.1.128/25")]
    [InlineData("10.0.0.1/32", 0x0a000001u, 32, "10.0.0.1")]
    public void IpPrefix_parses_and_formats(string text, uint address, int length, string formatted)
    {
        var prefix = IpPrefix.Parse(text);
        Assert.Equal((address, length), (prefix.Address, prefix.Length));
        Assert.Equal(formatted, prefix.ToString());
    }

    [Theory]
    [InlineData("256.0.0.1")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4/33")]
    [InlineData("01.2.3.4.5")]
    [InlineData("")]
    [InlineData("1.2.3.4/")]
    [InlineData("1.2.3.4/-1")]
    [InlineData("1..3.4")]
    [InlineData(" 1.2.3.4")]
    [InlineData("1.2.3.4 ")]
    [InlineData("+1.2.3.4")]
    [InlineData("0x1.2.3.4")]
    [InlineData("1.2.3.0004")]
    [InlineData("10.0.0.1/8")]
    public void IpPrefix_refuses_what_is_not_a_dotted_quad_network(string text)
    {
        var e = Assert.Throws<RulesetValidationException>(() => IpPrefix.Parse(text));
        Assert.Contains(text, e.Message);
    }

    [Theory]
    [InlineData(0u, 33)]
    [InlineData(0u, -1)]
    [InlineData(0x0a000001u, 24)]
    public void IpPrefix_constructor_refuses_bad_lengths_and_host_bits(uint address, int length) =>
        Assert.Throws<RulesetValidationException>(() => new IpPrefix(IpFamily.Ipv4, address, length));

    [Theory]
    [InlineData("10.0.0.0/8", 0x0a000000u, true)]
    [InlineData("10.0.0.0/8", 0x0affffffu, true)]
    [InlineData("10.0.0.0/8", 0x09ffffffu, false)]
    [InlineData("10.0.0.0/8", 0x0b000000u, false)]
    [InlineData("0.0.0.0/0", 0u, true)]
    [InlineData("0.0.0.0/0", 0xffffffffu, true)]
    [InlineData("10.0.0.1", 0x0a000001u, true)]
    [InlineData("10.0.0.1", 0x0a000000u, false)]
    [InlineData("10.0.0.1", 0x0a000002u, false)]
    [InlineData("192.168.1.128/25", 0xc0a8017fu, false)]
    [InlineData("192.168.1.128/25", 0xc0a801ffu, true)]
    public void IpPrefix_contains_exactly_its_range(string prefix, uint address, bool expected) =>
        Assert.Equal(expected, IpPrefix.Parse(prefix).Contains(IpFamily.Ipv4, address));

    // --- IpProtocol ------------------------------------------------------------------------------------

    [Theory]
    [InlineData("tcp", 6, "tcp")]
    [InlineData("TCP", 6, "tcp")]
    [InlineData("udp", 17, "udp")]
    [InlineData("icmp", 1, "icmp")]
    [InlineData("6", 6, "tcp")]
    [InlineData("47", 47, "gre")]
    [InlineData("58", 58, "icmpv6")]
    [InlineData("ipv6-icmp", 58, "icmpv6")]
    [InlineData("99", 99, "99")]
    [InlineData("0", 0, "0")]
    [InlineData("255", 255, "255")]
    public void IpProtocol_parses_names_and_numbers(string text, byte number, string formatted)
    {
        var protocol = IpProtocol.Parse(text);
        Assert.Equal(number, protocol.Number);
        Assert.Equal(formatted, protocol.ToString());
    }

    [Theory]
    [InlineData("smtp")]
    [InlineData("256")]
    [InlineData("-1")]
    [InlineData("")]
    [InlineData(" 6")]
    public void IpProtocol_refuses_unknown_names_and_out_of_range_numbers(string text)
    {
        var e = Assert.Throws<RulesetValidationException>(() => IpProtocol.Parse(text));
        Assert.Equal("protocol", e.Field);
    }

    [Fact]
    public void Only_tcp_and_udp_have_ports()
    {
        Assert.True(IpProtocol.Tcp.HasPorts);
        Assert.True(IpProtocol.Udp.HasPorts);
        Assert.False(IpProtocol.Icmp.HasPorts);
        Assert.False(new IpProtocol(132).HasPorts);
    }

    [Fact]
    public void Match_with_a_port_needs_tcp_or_udp()
    {
        var e = Assert.Throws<RulesetValidationException>(() => new Rule(null, Matches.Simple(destinationPort: 23), Verdict.Drop));
        Assert.Equal("destination-port", e.Field);
        Assert.Equal(PortMatch.Single(23), Matches.Simple(protocol: IpProtocol.Udp, destinationPort: 23).DestinationPort);
    }

    // --- Names -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("demo")]
    [InlineData("0")]
    [InlineData("web_front-2")]
    [InlineData("abcdefghijklmnopqrstuvwxyz012345")] // 32
    public void Deployment_names_accepted(string name) => Names.CheckDeploymentName(name);

    [Theory]
    [InlineData("")]
    [InlineData("Demo")]
    [InlineData("-demo")]
    [InlineData("_demo")]
    [InlineData("de mo")]
    [InlineData("de/mo")]
    [InlineData("de.mo")]
    [InlineData("abcdefghijklmnopqrstuvwxyz0123456")] // 33
    public void Deployment_names_refused(string name)
    {
        Assert.False(Names.IsDeploymentName(name));
        Assert.Throws<RulesetValidationException>(() => Names.CheckDeploymentName(name));
    }

    [Theory]
    [InlineData("INPUT", true)]
    [InlineData("in-put_2", true)]
    [InlineData("abcdefghijklmnopqrstuvwxyz012", true)] // 29
    [InlineData("abcdefghijklmnopqrstuvwxyz0123", false)] // 30
    [InlineData("", false)]
    [InlineData("-input", false)]
    [InlineData("in put", false)]
    [InlineData("in/put", false)]
    [InlineData("in:put", false)]
    [InlineData("in.put", false)]
    public void Chain_names(string name, bool valid) => AssertCheck(() => Names.CheckChainName(name), valid);

    [Theory]
    [InlineData("allow-dns", true)]
    [InlineData("v1.2:ssh_in", true)]
    [InlineData("", false)]
    [InlineData(".hidden", true)]
    [InlineData("allow ssh from the office", true)] // iptables comments become rule names
    [InlineData("a/b", true)]
    [InlineData(" leading", false)]
    [InlineData("trailing ", false)]
    [InlineData("tab\there", false)]
    [InlineData("new\nline", false)]
    public void Rule_names(string name, bool valid) => AssertCheck(() => Names.CheckRuleName(name), valid);

    [Fact]
    public void Rule_names_are_limited_to_256_characters()
    {
        Names.CheckRuleName(new string('r', 256));
        Assert.Throws<RulesetValidationException>(() => Names.CheckRuleName(new string('r', 257)));
    }

    [Theory]
    [InlineData("eth0", true)]
    [InlineData("bpfd1", true)]
    [InlineData("veth-a.100@x", true)]
    [InlineData("abcdefghijklmno", true)] // 15
    [InlineData("abcdefghijklmnop", false)] // 16
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("eth/0", false)]
    [InlineData("eth:0", false)]
    [InlineData("eth 0", false)]
    [InlineData("eth\t0", false)]
    public void Interface_names(string name, bool valid)
    {
        AssertCheck(() => Names.CheckInterfaceName(name), valid);
        if (!valid) Assert.Throws<RulesetValidationException>(() => ChainOn("INPUT", name));
    }

    // In .NET '$' also matches before a final "\n": a YAML `|` block scalar would otherwise name a directory "demo\n".
    [Theory]
    [InlineData("deployment")]
    [InlineData("chain")]
    [InlineData("rule")]
    [InlineData("interface")]
    public void Names_with_a_trailing_newline_are_refused(string kind)
    {
        Action<string> check = kind switch
        {
            "deployment" => Names.CheckDeploymentName,
            "chain" => Names.CheckChainName,
            "rule" => Names.CheckRuleName,
            _ => Names.CheckInterfaceName,
        };
        Assert.Throws<RulesetValidationException>(() => check("eth0\n"));
    }

    private static void AssertCheck(Action check, bool valid)
    {
        if (valid) check();
        else Assert.Throws<RulesetValidationException>(check);
    }

    // --- Chain and Ruleset -----------------------------------------------------------------------------

    [Fact]
    public void Chain_refuses_two_rules_with_the_same_name_and_says_which()
    {
        var a = new Rule("a", Match.Any, Verdict.Drop);
        var e = Assert.Throws<RulesetValidationException>(() => ChainOn("INPUT", "eth0", a, new Rule("b", Match.Any, Verdict.Drop), a));
        Assert.Equal((2, "name"), (e.RuleIndex, e.Field));
        Assert.Contains("two rules named 'a'", e.Message);
    }

    [Fact]
    public void Chain_allows_several_unnamed_rules()
    {
        var unnamed = new Rule(null, Match.Any, Verdict.Drop);
        Assert.Equal(2, ChainOn("INPUT", "eth0", unnamed, unnamed).Rules.Count);
    }

    [Fact]
    public void Ruleset_refuses_two_chains_on_the_same_hook_and_interface()
    {
        var e = Assert.Throws<RulesetValidationException>(() => new Ruleset("demo", [ChainOn("A", "eth0"), ChainOn("B", "eth0")]));
        Assert.Contains("'A' and 'B' both attach at xdp on eth0", e.Message);
    }

    [Fact]
    public void Ruleset_accepts_chains_on_different_interfaces()
    {
        var ruleset = new Ruleset("demo", [ChainOn("A", "eth0"), ChainOn("B", "eth1")]);
        Assert.Equal(["A", "B"], ruleset.Chains.Select(c => c.Name));
    }

    [Fact]
    public void Ruleset_refuses_two_chains_with_the_same_name()
    {
        var e = Assert.Throws<RulesetValidationException>(() => new Ruleset("demo", [ChainOn("A", "eth0"), ChainOn("A", "eth1")]));
        Assert.Contains("two chains named 'A'", e.Message);
    }

    [Fact]
    public void Ruleset_refuses_no_chains() =>
        Assert.Throws<RulesetValidationException>(() => new Ruleset("demo", []));
}
