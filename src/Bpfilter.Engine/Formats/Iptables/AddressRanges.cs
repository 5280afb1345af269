using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Formats.Iptables;

/// <summary>Address ranges (iptables' -m iprange) as the fewest prefixes that cover exactly the same addresses.</summary>
internal static class AddressRanges
{
    /// <summary>The fewest prefixes, in address order, whose union is <paramref name="first"/> to <paramref name="last"/>.</summary>
    public static List<IpPrefix> ToPrefixes(IpFamily family, UInt128 first, UInt128 last)
    {
        int bits = family == IpFamily.Ipv4 ? 32 : 128;
        var result = new List<IpPrefix>();
        var start = first;
        while (true)
        {
            // The shortest prefix (largest block) that starts at 'start' and ends at or before 'last'.
            int length = 0;
            while ((start & HostMask(bits, length)) != 0 || last - start < HostMask(bits, length)) length++;
            result.Add(new IpPrefix(family, start, length));
            var end = start + HostMask(bits, length);
            if (end == last) return result;
            start = end + 1;
        }
    }

    /// <summary>
    /// The range that <paramref name="prefixes"/> are the minimal cover of, or null when they are not one (out of
    /// order, overlapping, with gaps, or not the fewest): then only a list of prefixes says what they mean.
    /// </summary>
    public static (UInt128 First, UInt128 Last)? AsRange(IReadOnlyList<IpPrefix> prefixes)
    {
        if (prefixes.Count < 2) return null;
        var family = prefixes[0].Family;
        int bits = prefixes[0].Bits;
        var first = prefixes[0].Address;
        var last = prefixes[^1].Address | HostMask(bits, prefixes[^1].Length);
        if (last < first) return null;
        return ToPrefixes(family, first, last).SequenceEqual(prefixes) ? (first, last) : null;
    }

    public static UInt128 HostMask(int bits, int length) =>
        length == 0 ? (bits == 32 ? uint.MaxValue : UInt128.MaxValue) : ((UInt128)1 << (bits - length)) - 1;

    public static string FormatAddress(IpFamily family, UInt128 address) =>
        new IpPrefix(family, address, family == IpFamily.Ipv4 ? 32 : 128).ToString();
}
