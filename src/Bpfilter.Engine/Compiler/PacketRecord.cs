using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Compiler;

/// <summary>
/// The fields the parser reads out of a packet, kept on the stack for the rules (offsets from r10). Each u32 field
/// sits in the upper half of its own 8-byte cell: the verifier tracks only what is stored at 8-byte-aligned
/// offsets, so these stay plain "some bytes", the state at every rule's start is the same whatever path the
/// parser took, and the verifier prunes instead of exploring each path through every rule. Addresses are four
/// host-order words each (an IPv4 address is word 0); ports, lengths and the rest are host-order numbers.
/// </summary>
internal static class PacketRecord
{
    public const short CounterKey = -4;       // u32 key for a counter lookup
    public const short PacketLength = -16;    // u64 bytes to count
    public const short Family = -20;          // 4, 6 (the parser sends anything else away before the rules)
    public const short Protocol = -28;        // the transport protocol (IPv6: after the extension headers)
    public const short SourcePort = -36;
    public const short DestinationPort = -44;
    public const short TcpFlags = -52;
    public const short IcmpType = -60;
    public const short IcmpCode = -68;
    public const short Ttl = -76;             // IPv4 TTL or IPv6 hop limit
    public const short Dscp = -84;
    public const short Length = -92;          // IPv4 total length, IPv6 payload length + 40
    public const short Fragment = -100;       // FragmentNone, FragmentFirst or FragmentLater
    public const short Mark = -108;
    public const short InInterface = -116;    // ifindex, 0 when the hook has none
    public const short OutInterface = -124;
    public const short HasTransport = -132;   // TransportRead when the ports, flags or ICMP type were read, TransportCutShort when the header was too short
    public const short LimitScratch = -140;   // u32 key for a limit's bucket lookup
    private const short SourceAddressWord0 = -148;
    private const short DestinationAddressWord0 = -180;

    public const int FragmentNone = 0, FragmentFirst = 1, FragmentLater = 2;
    public const int TransportRead = 1, TransportCutShort = 2;

    /// <summary>Word <paramref name="index"/> (0–3) of the source address.</summary>
    public static short SourceAddress(int index) => (short)(SourceAddressWord0 - 8 * index);

    /// <summary>Word <paramref name="index"/> (0–3) of the destination address.</summary>
    public static short DestinationAddress(int index) => (short)(DestinationAddressWord0 - 8 * index);

    /// <summary>Where the transport header starts, from the first byte the hook sees (a reject rewrites it).</summary>
    public const short TransportOffset = -212;

    /// <summary>The first byte below the record: scratch space for header slices and map keys starts here.</summary>
    public const short End = -216;

    /// <summary>Scratch: 64 bytes where netfilter's bpf_dynptr_slice copies a header that is not linear, and map keys are built.</summary>
    public const short Buffer = -280;

    /// <summary>Netfilter's struct bpf_dynptr (16 bytes).</summary>
    public const short Dynptr = -296;

    /// <summary>The context pointer, spilled by flavours that need it after the parser (a reject at XDP, the conntrack kfuncs).</summary>
    public const short Context = -304;

    // Connection tracking (Matchers/ConntrackMatcher): written after the parser, only by programs whose rules ask for it.
    public const short CtState = -308;        // one CtStates bit
    public const short CtDirection = -316;    // ConntrackMatcher.DirectionOriginal, DirectionReply or DirectionNone

    /// <summary>Zeroes every field first thing, so that no path reads a field it did not write (r1, the context, is kept).</summary>
    public static void EmitClear(Assembler asm)
    {
        short[] scalars = [Family, Protocol, SourcePort, DestinationPort, TcpFlags, IcmpType, IcmpCode, Ttl, Dscp, Length, Fragment, Mark, InInterface, OutInterface, HasTransport, TransportOffset];
        foreach (var field in scalars.Concat(Enumerable.Range(0, 4).Select(SourceAddress)).Concat(Enumerable.Range(0, 4).Select(DestinationAddress)))
            Store(asm, field, 0);
    }

    /// <summary>r0 = the u32 field at <paramref name="offset"/>.</summary>
    public static void Load(Assembler asm, short offset, Register dst = Register.R0) => asm.Load(Size.Word, dst, Register.R10, offset);

    /// <summary>The field at <paramref name="offset"/> = <paramref name="src"/>.</summary>
    public static void Store(Assembler asm, short offset, Register src) => asm.Store(Size.Word, Register.R10, offset, src);

    public static void Store(Assembler asm, short offset, int value) => asm.Store(Size.Word, Register.R10, offset, value);
}
