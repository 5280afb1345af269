using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>The single-field header matches: family, protocol, TCP flags, ICMP type and code, length, DSCP, TTL, fragment, mark.</summary>
internal static class HeaderMatchers
{
    public static Condition Family(IpFamily family) => new(new FieldEquals(PacketRecord.Family, (uint)family));

    public static Condition HasTransport() => new(new FieldEquals(PacketRecord.HasTransport, PacketRecord.TransportRead));

    public static Condition Protocol(ProtocolMatch match) => new(new FieldEquals(PacketRecord.Protocol, match.Protocol.Number), match.Negated);

    public static Condition TcpFlags(TcpFlagsMatch match) =>
        new(new FieldEquals(PacketRecord.TcpFlags, (uint)match.Mask, (uint)match.Set), match.Negated);

    public static Condition Range(short field, RangeMatch match) => new(new FieldInRange(field, match.First, match.Last), match.Negated);

    public static Condition Fragment(FragmentMatch match) =>
        new(new FieldEquals(PacketRecord.Fragment, match.Kind == FragmentKind.First ? (uint)PacketRecord.FragmentFirst : PacketRecord.FragmentLater), match.Negated);

    public static Condition Mark(MarkMatch match) => new(new FieldEquals(PacketRecord.Mark, match.Mask, match.Value & match.Mask), match.Negated);

    public static Condition Interface(InterfaceMatch match, uint ifindex, bool incoming) =>
        new(new FieldEquals(incoming ? PacketRecord.InInterface : PacketRecord.OutInterface, ifindex), match.Negated);
}
