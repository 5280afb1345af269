using Bpfilter.Engine.Editing;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

public sealed class MatchTextTests
{
    [Theory]
    [InlineData(new[] { "10.0.0.0/8" }, "10.0.0.0/8")]
    [InlineData(new[] { "!10.0.0.0/8" }, "!10.0.0.0/8")]
    [InlineData(new[] { "! 10.0.0.0/8", "192.168.0.0/16" }, "![10.0.0.0/8, 192.168.0.0/16]")]
    [InlineData(new[] { "2001:db8::/32", "::1" }, "[2001:db8::/32, ::1]")]
    [InlineData(new[] { "@blocklist" }, "@blocklist")]
    [InlineData(new[] { "!@blocklist" }, "!@blocklist")]
    public void Addresses_read_lists_negation_and_set_references(string[] values, string expected) =>
        Assert.Equal(expected, MatchText.Addresses(values, "source").ToString());

    [Theory]
    [InlineData(new[] { "10.0.0.0/8", "!192.168.0.0/16" }, "'!192.168.0.0/16': a '!' negates the whole list, so it goes once, before the first value", "source")]
    [InlineData(new[] { "@a", "10.0.0.1" }, "a set reference stands alone; put the other values in the set", "source")]
    [InlineData(new[] { "10.0.0.1", "::1" }, "an address list mixes IPv4 and IPv6: write one rule for each family", "source")]
    [InlineData(new[] { "10.0.0.1/8" }, "10.0.0.1/8 has host bits set; the network is 10.0.0.0/8", "source")]
    [InlineData(new[] { "@1bad" }, "'1bad' is not a set name: use 1 to 32 letters, digits, '_', '-' or '.', starting with a letter", "set")]
    [InlineData(new string[0], "give at least one value", "source")]
    public void Addresses_refuse_with_the_reason_and_the_field(string[] values, string message, string field)
    {
        var e = Assert.Throws<RulesetValidationException>(() => MatchText.Addresses(values, "source"));
        Assert.Equal((message, field), (e.Message, e.Field));
    }

    [Theory]
    [InlineData(new[] { "80" }, "80")]
    [InlineData(new[] { "80", "443", "1000-2000", "3000:3010" }, "[80, 443, 1000-2000, 3000-3010]")]
    [InlineData(new[] { "!22" }, "!22")]
    [InlineData(new[] { "@web-ports" }, "@web-ports")]
    public void Ports_read_lists_ranges_negation_and_set_references(string[] values, string expected) =>
        Assert.Equal(expected, MatchText.Ports(values, "destination-port").ToString());

    [Theory]
    [InlineData("70000")]
    [InlineData("2000-1000")]
    [InlineData("http")]
    public void Ports_refuse_what_is_not_a_port(string text) =>
        Assert.Throws<RulesetValidationException>(() => MatchText.Ports([text], "destination-port"));

    [Theory]
    [InlineData("syn", "syn")]
    [InlineData("SYN", "syn")]
    [InlineData("!syn", "!syn")]
    [InlineData("SYN,ACK,FIN,RST SYN", "syn")]
    [InlineData("SYN,ACK SYN,ACK", "SYN,ACK SYN,ACK")]
    [InlineData("ALL NONE", "ALL NONE")]
    public void Tcp_flags_read_iptables_spelling(string text, string expected) =>
        Assert.Equal(expected, MatchText.TcpFlags(text).ToString());

    [Theory]
    [InlineData("SYN,ACK")]
    [InlineData("SYN ACK")]
    [InlineData("SYN,BOGUS SYN")]
    [InlineData("SYN SYN ACK")]
    public void Tcp_flags_refuse_what_iptables_would(string text) =>
        Assert.Throws<RulesetValidationException>(() => MatchText.TcpFlags(text));

    [Fact]
    public void Icmp_types_read_names_of_the_family_numbers_and_ranges()
    {
        Assert.Equal(RangeMatch.Exactly(8), MatchText.IcmpType("echo-request", v6: false));
        Assert.Equal(RangeMatch.Exactly(128), MatchText.IcmpType("echo-request", v6: true));
        Assert.Equal(new RangeMatch(3, 5, negated: true), MatchText.IcmpType("!3-5", v6: false));
        Assert.Throws<RulesetValidationException>(() => MatchText.IcmpType("packet-too-big", v6: false));
        Assert.Throws<RulesetValidationException>(() => MatchText.IcmpType("256", v6: false));
    }

    [Fact]
    public void Ranges_fragments_interfaces_and_protocols_take_a_leading_bang()
    {
        Assert.Equal(new RangeMatch(100, 1500), MatchText.Range("100-1500", 65575, "length"));
        Assert.Equal(RangeMatch.Exactly(64, negated: true), MatchText.Range("!64", 255, "ttl"));
        Assert.Throws<RulesetValidationException>(() => MatchText.Range("64", 63, "dscp"));
        Assert.Equal(new FragmentMatch(FragmentKind.NotFirst), MatchText.Fragment("not-first"));
        Assert.Equal(new FragmentMatch(FragmentKind.First, Negated: true), MatchText.Fragment("!First"));
        Assert.Throws<RulesetValidationException>(() => MatchText.Fragment("second"));
        Assert.Equal(new InterfaceMatch("eth0", negated: true), MatchText.Interface("!eth0"));
        Assert.Equal(new ProtocolMatch(IpProtocol.Udp, Negated: true), MatchText.Protocol("!udp"));
    }

    [Theory]
    [InlineData("1", 1u, 0xffffffffu, false)]
    [InlineData("0x10/0xf0", 0x10u, 0xf0u, false)]
    [InlineData("!0xff", 0xffu, 0xffffffffu, true)]
    [InlineData("4294967295", 0xffffffffu, 0xffffffffu, false)]
    public void Marks_read_value_and_mask(string text, uint value, uint mask, bool negated) =>
        Assert.Equal(new MarkMatch(value, mask, negated), MatchText.Mark(text));

    [Theory]
    [InlineData("0x1/0x10")]
    [InlineData("4294967296")]
    [InlineData("0xg")]
    [InlineData("1/")]
    public void Marks_refuse_what_cannot_match_or_is_not_a_number(string text) =>
        Assert.Throws<RulesetValidationException>(() => MatchText.Mark(text));

    [Fact]
    public void Limits_take_the_burst_or_iptables_default()
    {
        Assert.Equal(new LimitMatch(5, RateUnit.Second, 10), MatchText.Limit("5/second", 10));
        Assert.Equal(new LimitMatch(3, RateUnit.Minute, LimitMatch.DefaultBurst), MatchText.Limit("3/min", null));
        Assert.Throws<RulesetValidationException>(() => MatchText.Limit("5/fortnight", null));
    }
}
