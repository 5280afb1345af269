using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// How a named set lives in the kernel: addresses in a hash keyed by the address in network order, networks in an LPM
/// trie keyed by {u32 prefix length; address in network order}, ports in a hash keyed by the host-order u32 port (a
/// range is one key per port). The value is one unused byte: a set only answers "is it there". Programs and the
/// member cmdlets build keys the same way, from here.
/// </summary>
public static class SetMaps
{
    private const uint NoPreallocation = 1; // BPF_F_NO_PREALLOC: LPM tries need it; hashes then grow with their members

    public static MapSpec SpecOf(NamedSet set) => set.Type switch
    {
        SetType.Ipv4Address => new(NameOf(set), MapType.Hash, 4, 1, NamedSet.MaxElements, NoPreallocation),
        SetType.Ipv6Address => new(NameOf(set), MapType.Hash, 16, 1, NamedSet.MaxElements, NoPreallocation),
        SetType.Ipv4Network => new(NameOf(set), MapType.LpmTrie, 8, 1, NamedSet.MaxElements, NoPreallocation),
        SetType.Ipv6Network => new(NameOf(set), MapType.LpmTrie, 20, 1, NamedSet.MaxElements, NoPreallocation),
        _ => new(NameOf(set), MapType.Hash, 4, 1, NamedSet.MaxElements, NoPreallocation),
    };

    /// <summary>The keys an element stands for: one for an address or network, one per port of a port range.</summary>
    public static IEnumerable<byte[]> KeysOf(SetType type, SetElement element)
    {
        if (type == SetType.Port)
        {
            var range = element.Ports!.Value;
            for (int port = range.First; port <= range.Last; port++)
            {
                var key = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)port);
                yield return key;
            }
            yield break;
        }
        var prefix = element.Prefix!.Value;
        var address = prefix.AddressBytes();
        if (type is SetType.Ipv4Address or SetType.Ipv6Address)
        {
            yield return address;
            yield break;
        }
        var lpm = new byte[4 + address.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(lpm, (uint)prefix.Length);
        address.CopyTo(lpm, 4);
        yield return lpm;
    }

    /// <summary>Every key of every element of <paramref name="set"/>.</summary>
    public static IEnumerable<byte[]> KeysOf(NamedSet set) => set.Elements.SelectMany(e => KeysOf(set.Type, e));

    /// <summary>The value every key maps to.</summary>
    public static readonly byte[] Present = [1];

    /// <summary>The number of map entries a set's elements take (a port range takes one per port).</summary>
    public static int EntryCount(NamedSet set) =>
        set.Type == SetType.Port ? set.Elements.Sum(e => e.Ports!.Value.Last - e.Ports.Value.First + 1) : set.Elements.Count;

    /// <summary>The element a key stands for (a port key is a single port).</summary>
    public static SetElement ElementOf(SetType type, ReadOnlySpan<byte> key) => type switch
    {
        SetType.Port => new SetElement(new PortRange((ushort)BinaryPrimitives.ReadUInt32LittleEndian(key), (ushort)BinaryPrimitives.ReadUInt32LittleEndian(key))),
        SetType.Ipv4Address => new SetElement(new IpPrefix(IpFamily.Ipv4, IpPrefix.ToInteger(key), 32)),
        SetType.Ipv6Address => new SetElement(new IpPrefix(IpFamily.Ipv6, IpPrefix.ToInteger(key), 128)),
        SetType.Ipv4Network => new SetElement(new IpPrefix(IpFamily.Ipv4, IpPrefix.ToInteger(key[4..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(key))),
        _ => new SetElement(new IpPrefix(IpFamily.Ipv6, IpPrefix.ToInteger(key[4..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(key))),
    };

    private static string NameOf(NamedSet set) => ChainCompiler.KernelName("s_", set.Name);
}
