using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>TCP and UDP ports: one range compare per listed port or range.</summary>
internal static class PortMatcher
{
    public static Condition For(PortMatch match, bool source)
    {
        short field = source ? PacketRecord.SourcePort : PacketRecord.DestinationPort;
        return new(match.Ranges.Select(r => (FieldTest)new FieldInRange(field, r.First, r.Last)).ToList(), match.Negated);
    }
}
