namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>What a region of interpreter memory is, which decides what a program may do with it.</summary>
public enum RegionKind
{
    /// <summary>The program's context (struct xdp_md, struct __sk_buff, ...), read through its <see cref="ContextLayout"/>.</summary>
    Context,
    /// <summary>Packet data, reached through the context's data and data_end pointers or a dynptr slice.</summary>
    Packet,
    /// <summary>A 512-byte stack frame; r10 points one past its end.</summary>
    Stack,
    /// <summary>The value of one map element (for per-CPU maps, the running CPU's copy).</summary>
    MapValue,
    /// <summary>A ring buffer record reserved with bpf_ringbuf_reserve and not yet submitted.</summary>
    RingBufferRecord,
}

/// <summary>
/// A bounded piece of interpreter memory. Registers that point into it carry it as their tag, so every access is
/// checked against this region's bounds and permissions, whatever arithmetic produced the address. Addresses are
/// synthetic (each region has a base of its own, far from the others), so pointer compares and differences behave
/// as in the kernel.
/// </summary>
public sealed class MemoryRegion
{
    internal MemoryRegion(string description, RegionKind kind, byte[] buffer, int start, int length, bool writable, ulong address)
    {
        Description = description;
        Kind = kind;
        Buffer = buffer;
        Start = start;
        Length = length;
        Writable = writable;
        Address = address;
    }

    /// <summary>For messages: "the packet (60 bytes)", "the stack", "the value of map c_INPUT".</summary>
    public string Description { get; }
    public RegionKind Kind { get; }
    public int Length { get; }
    public bool Writable { get; }

    /// <summary>The synthetic address of the region's first byte.</summary>
    public ulong Address { get; }

    internal byte[] Buffer { get; }
    internal int Start { get; }

    /// <summary>Context regions: the layout that says which loads are allowed and what they yield.</summary>
    internal ContextLayout? Layout { get; init; }

    /// <summary>Context regions: the packet that data and data_end point into (a new region after bpf_xdp_adjust_head or _tail).</summary>
    internal MemoryRegion? Packet { get; set; }

    /// <summary>Ring buffer records: the reservation to submit or discard.</summary>
    internal RingBufferReservation? Reservation { get; init; }

    /// <summary>Stack regions: 8-byte slots that hold a spilled pointer (offset → register value).</summary>
    internal Dictionary<int, RegisterValue>? Spills { get; set; }

    /// <summary>Stack regions: 16-byte slots initialised as a struct bpf_dynptr (offset → dynptr).</summary>
    internal Dictionary<int, Dynptr>? Dynptrs { get; set; }

    internal Span<byte> Bytes(int offset, int size) => Buffer.AsSpan(Start + offset, size);

    /// <summary>A window of this region with the same addresses (a dynptr slice of the packet, say).</summary>
    internal MemoryRegion View(int offset, int length, bool writable, string description) =>
        new(description, Kind, Buffer, Start + offset, length, writable && Writable, Address + (ulong)offset);

    /// <summary>Forgets spilled pointers and dynptrs that a write of <paramref name="size"/> bytes at <paramref name="offset"/> overlaps.</summary>
    internal void Clobber(int offset, int size)
    {
        if (Spills is { Count: > 0 } spills)
            foreach (var slot in spills.Keys.Where(s => s < offset + size && offset < s + 8).ToList()) spills.Remove(slot);
        if (Dynptrs is { Count: > 0 } dynptrs)
            foreach (var slot in dynptrs.Keys.Where(s => s < offset + size && offset < s + Dynptr.Size).ToList()) dynptrs.Remove(slot);
    }

    public override string ToString() => Description;
}

/// <summary>
/// An object of the kernel that a program holds a pointer to (struct sk_buff of a netfilter hook): only the fields
/// in <see cref="Fields"/> can be loaded, as the verifier allows BTF-typed loads; the rest only kernel functions read.
/// </summary>
public sealed class KernelObject
{
    /// <summary>Readable fields by (byte offset, size): a number, or a pointer to another kernel object.</summary>
    internal Dictionary<(int Offset, int Size), RegisterValue> Fields { get; } = new();

    internal KernelObject(string typeName, ulong address, MemoryRegion? packet)
    {
        TypeName = typeName;
        Address = address;
        Packet = packet;
    }

    /// <summary>"struct sk_buff", "struct nf_hook_state".</summary>
    public string TypeName { get; }
    public ulong Address { get; }

    /// <summary>For socket buffers: their data.</summary>
    internal MemoryRegion? Packet { get; }

    /// <summary>True for a reference a kernel function handed out that the program must release (KF_ACQUIRE: a conntrack lookup's connection).</summary>
    internal bool Acquired { get; init; }

    /// <summary>Set once the program has released it; any later use is a fault.</summary>
    internal bool Released { get; set; }

    public override string ToString() => TypeName;
}

/// <summary>A struct bpf_dynptr on the stack: a window on some memory (for skb dynptrs, the packet).</summary>
internal sealed record Dynptr(MemoryRegion Target, int Offset, int Length, bool ReadOnly)
{
    /// <summary>sizeof(struct bpf_dynptr).</summary>
    public const int Size = 16;
}

/// <summary>
/// A register as the interpreter sees it: 64 bits, and what they point into (a <see cref="MemoryRegion"/>, an
/// <see cref="InMemoryMap"/> loaded by ld_imm64, or a <see cref="KernelObject"/>), or no tag for a plain number.
/// </summary>
internal readonly record struct RegisterValue(ulong Bits, object? Tag)
{
    public static RegisterValue Scalar(ulong bits) => new(bits, null);
    public MemoryRegion? Region => Tag as MemoryRegion;
}

/// <summary>Hands out synthetic base addresses, 4 GiB apart, in the kernel's direct-map range.</summary>
internal sealed class AddressSpace
{
    private ulong _next = 0xffff_8880_0000_0000;

    public ulong Next()
    {
        var address = _next;
        _next += 0x1_0000_0000;
        return address;
    }
}
