using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>The helpers (call imm) and kernel functions (call by BTF id) the interpreter implements.</summary>
internal sealed partial class Machine
{
    private const long EFAULT = 14, EINVAL = 22, EAGAIN = 11, E2BIG = 7;

    /// <summary>The helper ids the interpreter runs, for documentation and tests.</summary>
    public static IReadOnlyList<int> HelperIds { get; } = [1, 2, 3, 5, 6, 7, 8, 26, 125, 130, 131, 132, 133, 160, 189, 201];

    /// <summary>The kernel functions the interpreter runs.</summary>
    public static IReadOnlyList<string> KfuncNames { get; } =
        ["bpf_dynptr_from_skb", "bpf_dynptr_from_xdp", "bpf_dynptr_size", "bpf_dynptr_slice", "bpf_dynptr_slice_rdwr",
         "bpf_cast_to_kern_ctx", "bpf_skb_ct_lookup", "bpf_xdp_ct_lookup", "bpf_ct_release"];

    private static string HelperName(int id) => Disassembler.HelperName(id) ?? $"unknown#{id}";

    private RegisterValue CallHelper(int id)
    {
        switch (id)
        {
            case 1: // void *bpf_map_lookup_elem(map, const void *key)
            {
                var map = MapArgument(1, id);
                var key = Memory(2, (int)map.Spec.KeySize, write: false);
                var value = map.ProgramLookup(key, _vm.Options.Cpu);
                if (value is null) return RegisterValue.Scalar(0);
                var region = ValueRegion(map, value);
                return new RegisterValue(region.Address, region);
            }
            case 2: // long bpf_map_update_elem(map, const void *key, const void *value, u64 flags)
            {
                var map = MapArgument(1, id);
                var key = Memory(2, (int)map.Spec.KeySize, write: false);
                var value = Memory(3, (int)map.Spec.ValueSize, write: false);
                return RegisterValue.Scalar(unchecked((ulong)map.ProgramUpdate(key, value, Get(4).Bits, _vm.Options.Cpu)));
            }
            case 3: // long bpf_map_delete_elem(map, const void *key)
            {
                var map = MapArgument(1, id);
                return RegisterValue.Scalar(unchecked((ulong)map.ProgramDelete(Memory(2, (int)map.Spec.KeySize, write: false))));
            }
            case 5 or 125 or 160: // u64 bpf_ktime_get_ns / _boot_ns / _coarse_ns
                return RegisterValue.Scalar(_vm.Options.Clock?.Invoke() ?? (ulong)EbpfInterpreter.Monotonic.Elapsed.Ticks * 100);
            case 6: // long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)
                return RegisterValue.Scalar(TracePrintk());
            case 7: // u32 bpf_get_prandom_u32(void)
                return RegisterValue.Scalar((uint)(_random ??= new Random(_vm.Options.RandomSeed)).NextInt64(0, 1L << 32));
            case 8: // u32 bpf_get_smp_processor_id(void)
                return RegisterValue.Scalar((uint)_vm.Options.Cpu);
            case 26: // long bpf_skb_load_bytes(const void *skb, u32 offset, void *to, u32 len)
            case 189: // long bpf_xdp_load_bytes(struct xdp_buff *xdp_md, u32 offset, void *buf, u32 len)
            {
                var ctx = Get(1);
                if (ctx.Tag is not MemoryRegion { Kind: RegionKind.Context } context || ctx.Bits != context.Address)
                    throw Error($"passes r1 to {HelperName(id)}, which needs the context");
                uint offset = (uint)Get(2).Bits, length = (uint)Get(4).Bits;
                if (length == 0 || length > 0xffff) Fault($"asks {HelperName(id)} for {length} bytes");
                var to = Memory(3, (int)length, write: true);
                var packet = context.Packet!;
                if (offset > 0xffff || offset + length > packet.Length)
                {
                    to.Clear();
                    return RegisterValue.Scalar(unchecked((ulong)(id == 26 ? -EFAULT : -EINVAL)));
                }
                packet.Bytes((int)offset, (int)length).CopyTo(to);
                return RegisterValue.Scalar(0);
            }
            case 44: // long bpf_xdp_adjust_head(struct xdp_buff *xdp_md, int delta)
            case 65: // long bpf_xdp_adjust_tail(struct xdp_buff *xdp_md, int delta)
            {
                var ctx = Get(1);
                if (ctx.Tag is not MemoryRegion { Kind: RegionKind.Context } context || ctx.Bits != context.Address || context.Layout != ContextLayout.XdpMd)
                    throw Error($"passes r1 to {HelperName(id)}, which needs the XDP context");
                int delta = (int)(uint)Get(2).Bits;
                var packet = context.Packet!;
                // Within the frame's buffer, as the kernel: the headroom in front, the frame at least 14 bytes.
                int headroom = packet.Start, length = packet.Length;
                int start = id == 44 ? headroom + delta : headroom;
                int newLength = id == 44 ? length - delta : length + delta;
                if (start < 0 || newLength < 14 || start + newLength > packet.Buffer.Length) return RegisterValue.Scalar(unchecked((ulong)-EINVAL));
                var buffer = packet.Buffer.ToArray();
                if (id == 65 && delta > 0) buffer.AsSpan(start + length, delta).Clear();
                context.Packet = new MemoryRegion($"the packet ({newLength} bytes)", RegionKind.Packet, buffer, start, newLength, true,
                    unchecked(packet.Address + (ulong)(start - headroom)));
                return RegisterValue.Scalar(0);
            }
            case 130: // long bpf_ringbuf_output(ringbuf, void *data, u64 size, u64 flags)
            {
                var ring = RingArgument(1, id);
                ulong size = Get(3).Bits, flags = Get(4).Bits;
                var data = Memory(2, checked((int)Math.Min(size, int.MaxValue)), write: false);
                if ((flags & ~3UL) != 0) return RegisterValue.Scalar(unchecked((ulong)-EINVAL));
                if (ring.Reserve(data.Length) is not { } record) return RegisterValue.Scalar(unchecked((ulong)-EAGAIN));
                data.CopyTo(record.Data);
                ring.Commit(record, keep: true);
                return RegisterValue.Scalar(0);
            }
            case 131: // void *bpf_ringbuf_reserve(ringbuf, u64 size, u64 flags)
            {
                var ring = RingArgument(1, id);
                ulong size = Get(2).Bits, flags = Get(3).Bits;
                if (flags != 0 || size > int.MaxValue || ring.Reserve((int)size) is not { } record) return RegisterValue.Scalar(0);
                _reservations.Add(record);
                var region = new MemoryRegion($"a ring buffer record of {ring.Spec.Name} ({size} bytes)", RegionKind.RingBufferRecord,
                    record.Data, 0, record.Data.Length, true, _addresses.Next()) { Reservation = record };
                return new RegisterValue(region.Address, region);
            }
            case 132 or 133: // void bpf_ringbuf_submit(void *data, u64 flags) / bpf_ringbuf_discard
            {
                var pointer = Get(1);
                if (pointer.Tag is not MemoryRegion { Reservation: { } record } region || pointer.Bits != region.Address)
                    throw Error($"passes r1 to {HelperName(id)}, which is not a record that bpf_ringbuf_reserve returned");
                if (record.Done) Fault("submits or discards a ring buffer record a second time");
                record.Map.Commit(record, keep: id == 132);
                return RegisterValue.Scalar(0);
            }
            case 201: // long bpf_dynptr_read(void *dst, u32 len, const struct bpf_dynptr *src, u32 offset, u64 flags)
            {
                uint length = (uint)Get(2).Bits;
                var dst = Memory(1, (int)Math.Min(length, int.MaxValue), write: true);
                var dynptr = DynptrArgument(3);
                uint offset = (uint)Get(4).Bits;
                if (Get(5).Bits != 0) return RegisterValue.Scalar(unchecked((ulong)-EINVAL));
                if ((long)offset + length > dynptr.Length) return RegisterValue.Scalar(unchecked((ulong)-E2BIG));
                dynptr.Target.Bytes(dynptr.Offset + (int)offset, (int)length).CopyTo(dst);
                return RegisterValue.Scalar(0);
            }
            default:
                Fault($"calls helper #{id} ({HelperName(id)}), which the interpreter does not implement");
                return default;
        }
    }

    private RegisterValue CallKfunc(string name)
    {
        switch (name)
        {
            case "bpf_dynptr_from_skb": // int bpf_dynptr_from_skb(struct __sk_buff *skb, u64 flags, struct bpf_dynptr *ptr__uninit)
            case "bpf_dynptr_from_xdp": // int bpf_dynptr_from_xdp(struct xdp_md *x, u64 flags, struct bpf_dynptr *ptr__uninit)
            {
                var source = Get(1);
                var (packet, readOnly) = source.Tag switch
                {
                    KernelObject { Packet: { } p } => (p, true), // netfilter's skb: read-only
                    MemoryRegion { Kind: RegionKind.Context } ctx when source.Bits == ctx.Address => (ctx.Packet!, false),
                    _ => (null, false),
                };
                if (packet is null) Fault($"passes r1 to {name}, which is neither the context nor a socket buffer");
                ulong flags = Get(2).Bits;
                var slot = DynptrSlot(3);
                if (flags != 0) return RegisterValue.Scalar(unchecked((ulong)-EINVAL));
                (slot.Stack.Dynptrs ??= new())[slot.Offset] = new Dynptr(packet, 0, packet.Length, readOnly);
                return RegisterValue.Scalar(0);
            }
            case "bpf_dynptr_size": // __u32 bpf_dynptr_size(const struct bpf_dynptr *p)
                return RegisterValue.Scalar((uint)DynptrArgument(1).Length);
            case "bpf_dynptr_slice": // void *bpf_dynptr_slice(const struct bpf_dynptr *p, u32 offset, void *buffer__opt, u32 buffer__szk)
            case "bpf_dynptr_slice_rdwr":
            {
                var dynptr = DynptrArgument(1);
                uint offset = (uint)Get(2).Bits;
                uint size = (uint)Get(4).Bits;
                var buffer = Get(3);
                if (buffer.Bits != 0 || buffer.Tag is not null) Resolve(buffer, 3, 0, (int)Math.Min(size, int.MaxValue), write: true, out _, aligned: false);
                bool writable = name == "bpf_dynptr_slice_rdwr";
                if (writable && dynptr.ReadOnly) return RegisterValue.Scalar(0);
                if ((long)offset + size > dynptr.Length) return RegisterValue.Scalar(0);
                var view = dynptr.Target.View(dynptr.Offset + (int)offset, (int)size, writable,
                    $"a {(writable ? "writable" : "read-only")} slice of {size} bytes at offset {offset} of {dynptr.Target.Description}");
                return new RegisterValue(view.Address, view);
            }
            case "bpf_cast_to_kern_ctx": // void *bpf_cast_to_kern_ctx(void *obj)
            {
                var ctx = Get(1);
                if (ctx.Tag is not MemoryRegion { Kind: RegionKind.Context } context || ctx.Bits != context.Address)
                    Fault("passes r1 to bpf_cast_to_kern_ctx, which needs the context");
                if (_vm.Context != ContextLayout.SkBuff) Fault($"casts {_vm.Context.StructName} to its kernel type, which the interpreter models only for struct __sk_buff");
                var skb = _kernelObjects.TryGetValue("kern_ctx", out var made) ? made : _kernelObjects["kern_ctx"] = SocketBuffer();
                return new RegisterValue(skb.Address, skb);
            }
            case "bpf_skb_ct_lookup": // struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *, struct bpf_sock_tuple *, u32 tuple__sz, struct bpf_ct_opts *, u32 opts__sz)
            case "bpf_xdp_ct_lookup": // struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *, ...the same)
                return ConntrackLookup(name);
            case "bpf_ct_release": // void bpf_ct_release(struct nf_conn *)
            {
                var pointer = Get(1);
                if (pointer.Tag is not KernelObject { Acquired: true } connection || pointer.Bits != connection.Address)
                {
                    Fault("passes r1 to bpf_ct_release, which is not a connection a lookup returned");
                    return default;
                }
                if (connection.Released) Fault("releases a connection a second time");
                connection.Released = true;
                return RegisterValue.Scalar(0);
            }
            default:
                Fault($"calls kernel function {name}, which the interpreter does not implement");
                return default;
        }
    }

    /// <summary>
    /// The conntrack lookups with the kernel's checks (__bpf_nf_ct_lookup): a bad argument is opts->error = -EINVAL (or
    /// -EPROTO for a protocol other than TCP and UDP) and NULL; otherwise the run's <see cref="ConntrackModel.Lookup"/>:
    /// a connection (opts->dir set; released with bpf_ct_release) or NULL with -ENOENT.
    /// </summary>
    private RegisterValue ConntrackLookup(string name)
    {
        const long ENOENT = 2, EPROTO = 71;
        var ctx = Get(1);
        var wanted = name == "bpf_xdp_ct_lookup" ? ContextLayout.XdpMd : ContextLayout.SkBuff;
        if (ctx.Tag is not MemoryRegion { Kind: RegionKind.Context } context || ctx.Bits != context.Address || _vm.Context != wanted)
            Fault($"passes r1 to {name}, which needs the {wanted.StructName} context");
        uint tupleSize = (uint)Get(3).Bits, optsSize = (uint)Get(5).Bits;
        if (optsSize is not (12 or 16)) Fault($"passes {name} opts__sz {optsSize}; struct bpf_ct_opts has 12 or 16 bytes");
        var opts = Memory(4, (int)optsSize, write: true);
        Memory(2, (int)Math.Min(tupleSize, 64), write: false); // the tuple must be there and initialised
        static RegisterValue Failed(Span<byte> opts, long errno)
        {
            BinaryPrimitives.WriteInt32LittleEndian(opts[4..], (int)-errno);
            return RegisterValue.Scalar(0);
        }
        int netns = BinaryPrimitives.ReadInt32LittleEndian(opts);
        byte protocol = opts[8];
        var reserved = optsSize == 16 ? opts[13..16] : opts[10..12]; // struct bpf_ct_opts' reserved bytes, new and old layout
        if (tupleSize is not (12 or 36) || reserved.ContainsAnyExcept((byte)0) || netns < -1) return Failed(opts, EINVAL);
        if (protocol is not (6 or 17)) return Failed(opts, EPROTO);
        if (_conntrack.Lookup is not { } entry) return Failed(opts, ENOENT);
        opts[9] = entry.Direction;
        var connection = new KernelObject("struct nf_conn", _addresses.Next(), null) { Acquired = true };
        if (_vm.Options.Conntrack is { } layout) connection.Fields[(layout.ConnectionStatus, 8)] = RegisterValue.Scalar(entry.Status);
        _references.Add(connection);
        return new RegisterValue(connection.Address, connection);
    }

    // --- arguments ----------------------------------------------------------------------------------------

    /// <summary><paramref name="size"/> bytes at the pointer in <paramref name="register"/>: stack, packet, map value or ring buffer record.</summary>
    private Span<byte> Memory(int register, int size, bool write)
    {
        var pointer = Get(register);
        if (size == 0) return Span<byte>.Empty;
        var region = Resolve(pointer, register, 0, 1, write, out _, aligned: false);
        if (region.Kind == RegionKind.Context) Fault($"passes the context in r{register} where the helper wants memory");
        long at = unchecked((long)(pointer.Bits - region.Address));
        if (at + size > region.Length)
            Fault($"passes r{register} as {size} bytes, but only {region.Length - at} remain of {region.Description} at offset {at}");
        if (region.Kind == RegionKind.Stack && write) region.Clobber((int)at, size);
        return region.Bytes((int)at, size);
    }

    private InMemoryMap MapArgument(int register, int helper)
    {
        var value = Get(register);
        if (value.Tag is not InMemoryMap map)
        {
            Fault($"passes r{register} to {HelperName(helper)} as a map, but it holds no map (load one with ld_imm64 first)");
            return null!;
        }
        if (map is RingBufferMap && helper is 1 or 2 or 3) Fault($"calls {HelperName(helper)} on ring buffer {map.Spec.Name}");
        return map;
    }

    private RingBufferMap RingArgument(int register, int helper)
    {
        if (Get(register).Tag is RingBufferMap ring) return ring;
        Fault($"passes r{register} to {HelperName(helper)}, which needs a ring buffer map");
        return null!;
    }

    private (MemoryRegion Stack, int Offset) DynptrSlot(int register)
    {
        var pointer = Get(register);
        var region = Resolve(pointer, register, 0, 8, write: true, out int offset);
        if (region.Kind != RegionKind.Stack) Fault($"passes r{register} as a struct bpf_dynptr, but it points into {region.Description}, not the stack");
        if (offset + Dynptr.Size > region.Length) Fault($"passes r{register} as a struct bpf_dynptr, but 16 bytes do not fit at fp{offset - StackSize}");
        region.Clobber(offset, Dynptr.Size);
        region.Bytes(offset, Dynptr.Size).Clear();
        return (region, offset);
    }

    private Dynptr DynptrArgument(int register)
    {
        var pointer = Get(register);
        var region = Resolve(pointer, register, 0, 8, write: false, out int offset);
        if (region.Kind != RegionKind.Stack || region.Dynptrs?.TryGetValue(offset, out var dynptr) != true)
        {
            Fault($"passes r{register} as a struct bpf_dynptr, but no dynptr was initialised there (or it was overwritten since)");
            return null!;
        }
        return dynptr!;
    }

    private ulong TracePrintk()
    {
        uint size = (uint)Get(2).Bits;
        if (size == 0 || size > 1024) Fault($"passes a format of {size} bytes to bpf_trace_printk");
        var format = Memory(1, (int)size, write: false);
        int nul = format.IndexOf((byte)0);
        if (nul < 0) Fault("passes bpf_trace_printk a format without its terminating NUL");
        var text = Encoding.ASCII.GetString(format[..nul]);
        var output = new StringBuilder();
        int argument = 3;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '%' || i + 1 >= text.Length)
            {
                output.Append(text[i]);
                continue;
            }
            int j = i + 1;
            while (j < text.Length && text[j] is 'l' or 'h' or 'z') j++;
            if (j >= text.Length) break;
            char conversion = text[j];
            if (conversion == '%')
            {
                output.Append('%');
                i = j;
                continue;
            }
            if (argument > 5) Fault("passes bpf_trace_printk more than 3 conversions");
            ulong value = _init[argument] ? _regs[argument].Bits : 0;
            argument++;
            bool wide = text.AsSpan(i + 1, j - i - 1).Contains('l');
            output.Append(conversion switch
            {
                'd' or 'i' => (wide ? (long)value : (int)value).ToString(CultureInfo.InvariantCulture),
                'u' => (wide ? value : (uint)value).ToString(CultureInfo.InvariantCulture),
                'x' => (wide ? value : (uint)value).ToString("x", CultureInfo.InvariantCulture),
                'p' => "0x" + value.ToString("x", CultureInfo.InvariantCulture),
                'c' => ((char)(byte)value).ToString(),
                _ => "%" + conversion,
            });
            i = j;
        }
        _trace.Add(output.ToString());
        return (ulong)output.Length;
    }
}
