using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>Source and destination prefixes: each host-order address word under the prefix's mask for that word.</summary>
internal static class AddressMatcher
{
    public static Condition For(AddressMatch match, bool source) =>
        new(match.Prefixes.Select(p => Prefix(p, source)).ToList(), match.Negated);

    private static FieldTest Prefix(IpPrefix prefix, bool source)
    {
        int words = prefix.Bits / 32;
        var tests = new List<FieldTest>();
        for (int i = 0; i < words; i++)
        {
            int shift = (words - 1 - i) * 32;
            uint word = (uint)(prefix.Address >> shift);
            uint mask = (uint)(prefix.Mask >> shift);
            if (mask == 0) continue;
            short field = source ? PacketRecord.SourceAddress(i) : PacketRecord.DestinationAddress(i);
            tests.Add(new FieldEquals(field, mask, word));
        }
        return tests.Count == 1 ? tests[0] : new AllOf(tests);
    }
}
