using Bpfilter.Engine.Rules;
using Bpfilter.Engine.Simulation;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>TCP flags and ICMP types as iptables spells them, and the packets built with them.</summary>
public sealed class PacketFieldNamesTests
{
    [Theory]
    [InlineData("SYN", TcpFlags.Syn)]
    [InlineData("SYN,ACK", TcpFlags.Syn | TcpFlags.Ack)]
    [InlineData("fin, psh ,urg", TcpFlags.Fin | TcpFlags.Psh | TcpFlags.Urg)]
    [InlineData("ALL", TcpFlags.All)]
    [InlineData("NONE", TcpFlags.None)]
    public void Tcp_flags_parse_in_iptables_spelling(string text, TcpFlags expected) => Assert.Equal(expected, TcpFlagNames.Parse(text));

    [Theory]
    [InlineData("SYN,BOGUS")]
    [InlineData("2")]
    public void Unknown_tcp_flags_are_refused(string text) =>
        Assert.Contains("is not a TCP flag", Assert.Throws<RulesetValidationException>(() => TcpFlagNames.Parse(text)).Message);

    [Fact]
    public void Tcp_flags_format_back() => Assert.Equal("SYN,ACK", TcpFlagNames.Format(TcpFlags.Syn | TcpFlags.Ack));

    [Theory]
    [InlineData("echo-request", false, 8)]
    [InlineData("echo-request", true, 128)]
    [InlineData("destination-unreachable", false, 3)]
    [InlineData("destination-unreachable", true, 1)]
    [InlineData("42", false, 42)]
    public void Icmp_types_by_name_or_number(string text, bool v6, byte expected) => Assert.Equal(expected, IcmpTypes.Parse(text, v6));

    [Fact]
    public void Unknown_icmp_type_is_refused() =>
        Assert.Contains("is not an ICMP type", Assert.Throws<RulesetValidationException>(() => IcmpTypes.Parse("ping", false)).Message);

    [Fact]
    public void Built_packets_carry_the_flags_and_the_icmp_type()
    {
        var tcp = PacketBuilder.Build(new PacketFields { DestinationPort = 80, TcpFlags = TcpFlags.Syn | TcpFlags.Ack }, PacketLayer.Ethernet);
        Assert.Equal(0x12, tcp[14 + 20 + 13]);
        var icmp = PacketBuilder.Build(new PacketFields { Protocol = IpProtocol.Icmp, IcmpType = 3, IcmpCode = 3 }, PacketLayer.Ethernet);
        Assert.Equal((3, 3), (icmp[14 + 20], icmp[14 + 20 + 1]));
    }
}
