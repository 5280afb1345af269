using System.Buffers.Binary;

namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>
/// A field of a kernel object behind the context that programs may load through BTF pointers: its path from a context
/// field ("state.in.ifindex": ctx->state->in->ifindex), the byte offset of each step after the first, the type of
/// each object reached through a pointer, and the last field's size. A run's context values set it by its path.
/// </summary>
public sealed record KernelField(string Path, IReadOnlyList<int> Offsets, IReadOnlyList<string> Types, int Size);

/// <summary>What a load of a context field yields.</summary>
public enum ContextFieldKind
{
    /// <summary>A number, from the run's context values (or the field's default).</summary>
    Scalar,
    /// <summary>A number: the length of the packet.</summary>
    PacketLength,
    /// <summary>A pointer to the first byte of the packet (the kernel rewrites the u32 load into a pointer load).</summary>
    PacketStart,
    /// <summary>A pointer one past the last byte of the packet.</summary>
    PacketEnd,
    /// <summary>A pointer to the metadata in front of the packet; the interpreter gives no metadata, so it equals PacketStart.</summary>
    PacketMeta,
    /// <summary>A pointer to a kernel object (<see cref="ContextField.ObjectType"/>) that only kernel functions may read.</summary>
    KernelObject,
}

/// <summary>One field of a context struct: where it is, how wide, what a load of it yields, and whether a program may write it.</summary>
public sealed record ContextField(string Name, int Offset, int Size, ContextFieldKind Kind = ContextFieldKind.Scalar,
    bool Writable = false, ulong Default = 0, string? ObjectType = null)
{
    public bool IsPointer => Kind is ContextFieldKind.PacketStart or ContextFieldKind.PacketEnd or ContextFieldKind.PacketMeta or ContextFieldKind.KernelObject;
}

/// <summary>
/// The context a program type receives in r1, as a description the interpreter follows: its size and its fields.
/// As the verifier does, it allows only loads that lie within one field, pointer fields only at their exact offset
/// and width, and stores only to writable fields. A new program type needs only a new layout.
/// </summary>
public sealed class ContextLayout
{
    public ContextLayout(string structName, int size, IEnumerable<ContextField> fields)
    {
        StructName = structName;
        Size = size;
        Fields = fields.OrderBy(f => f.Offset).ToArray();
        _fieldOfByte = new ContextField?[size];
        foreach (var field in Fields)
        {
            if (field.Offset < 0 || field.Offset + field.Size > size || field.Size is not (1 or 2 or 4 or 8))
                throw new ArgumentException($"field {field.Name} of {structName} does not fit a {size}-byte struct");
            for (int i = field.Offset; i < field.Offset + field.Size; i++)
            {
                if (_fieldOfByte[i] is not null) throw new ArgumentException($"fields {_fieldOfByte[i]!.Name} and {field.Name} of {structName} overlap");
                _fieldOfByte[i] = field;
            }
            _names.Add(field.Name);
        }
    }

    private readonly ContextField?[] _fieldOfByte;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>"struct xdp_md".</summary>
    public string StructName { get; }
    public int Size { get; }
    public IReadOnlyList<ContextField> Fields { get; }

    /// <summary>XDP: struct xdp_md {u32 data; u32 data_end; u32 data_meta; u32 ingress_ifindex; u32 rx_queue_index; u32 egress_ifindex}.</summary>
    public static ContextLayout XdpMd { get; } = new("struct xdp_md", 24,
    [
        new("data", 0, 4, ContextFieldKind.PacketStart),
        new("data_end", 4, 4, ContextFieldKind.PacketEnd),
        new("data_meta", 8, 4, ContextFieldKind.PacketMeta),
        new("ingress_ifindex", 12, 4, Default: 1),   // BPF_PROG_TEST_RUN runs on the loopback device's queue 0
        new("rx_queue_index", 16, 4),
        new("egress_ifindex", 20, 4),
    ]);

    /// <summary>TC and cgroup_skb: struct __sk_buff (192 bytes), with data@76 and data_end@80.</summary>
    public static ContextLayout SkBuff { get; } = new("struct __sk_buff", 192,
    [
        new("len", 0, 4, ContextFieldKind.PacketLength),
        new("pkt_type", 4, 4),
        new("mark", 8, 4, Writable: true),
        new("queue_mapping", 12, 4, Writable: true),
        new("protocol", 16, 4),
        new("vlan_present", 20, 4),
        new("vlan_tci", 24, 4),
        new("vlan_proto", 28, 4),
        new("priority", 32, 4, Writable: true),
        new("ingress_ifindex", 36, 4, Default: 1),
        new("ifindex", 40, 4, Default: 1),
        new("tc_index", 44, 4, Writable: true),
        new("cb0", 48, 4, Writable: true), new("cb1", 52, 4, Writable: true), new("cb2", 56, 4, Writable: true),
        new("cb3", 60, 4, Writable: true), new("cb4", 64, 4, Writable: true),
        new("hash", 68, 4),
        new("tc_classid", 72, 4, Writable: true),
        new("data", 76, 4, ContextFieldKind.PacketStart),
        new("data_end", 80, 4, ContextFieldKind.PacketEnd),
        new("napi_id", 84, 4),
        new("family", 88, 4),
        new("remote_ip4", 92, 4),
        new("local_ip4", 96, 4),
        new("remote_ip6_0", 100, 4), new("remote_ip6_1", 104, 4), new("remote_ip6_2", 108, 4), new("remote_ip6_3", 112, 4),
        new("local_ip6_0", 116, 4), new("local_ip6_1", 120, 4), new("local_ip6_2", 124, 4), new("local_ip6_3", 128, 4),
        new("remote_port", 132, 4),
        new("local_port", 136, 4),
        new("data_meta", 140, 4, ContextFieldKind.PacketMeta),
        new("tstamp", 152, 8, Writable: true),
        new("wire_len", 160, 4),
        new("gso_segs", 164, 4),
        new("gso_size", 176, 4),
        new("tstamp_type", 180, 1),
        new("hwtstamp", 184, 8),
    ]);

    /// <summary>Netfilter: struct bpf_nf_ctx {const struct nf_hook_state *state; struct sk_buff *skb}; the packet is read through dynptr kfuncs.</summary>
    public static ContextLayout NfCtx { get; } = new("struct bpf_nf_ctx", 16,
    [
        new("state", 0, 8, ContextFieldKind.KernelObject, ObjectType: "struct nf_hook_state"),
        new("skb", 8, 8, ContextFieldKind.KernelObject, ObjectType: "struct sk_buff"),
    ]);

    /// <summary>The layout of a program type's context.</summary>
    public static ContextLayout For(ProgramType type) => type switch
    {
        ProgramType.Xdp => XdpMd,
        ProgramType.SchedCls or ProgramType.CgroupSkb => SkBuff,
        ProgramType.Netfilter => NfCtx,
        _ => throw new BpfilterException("InterpreterUnsupported", FailureCategory.NotImplemented,
            $"the interpreter has no context layout for program type {type}"),
    };

    /// <summary>The field that holds all of [offset, offset + size), if any.</summary>
    public ContextField? FieldAt(int offset, int size)
    {
        if (offset < 0 || size <= 0 || offset >= Size) return null;
        var field = _fieldOfByte[offset];
        return field is not null && offset + size <= field.Offset + field.Size ? field : null;
    }

    /// <summary>The context bytes for one run: scalar fields from <paramref name="values"/> (by field name) or their defaults.</summary>
    internal byte[] Build(int packetLength, IReadOnlyDictionary<string, ulong>? values, IReadOnlyList<KernelField> kernelFields)
    {
        var bytes = new byte[Size];
        if (values is not null)
        {
            foreach (var name in values.Keys)
            {
                if (!_names.Contains(name) && kernelFields.All(k => k.Path != name))
                    throw new BpfilterException("InterpreterContextInvalid", FailureCategory.InvalidArgument,
                        $"{StructName} has no field '{name}' (fields: {string.Join(", ", Fields.Select(f => f.Name))})");
            }
        }
        foreach (var field in Fields)
        {
            if (field.IsPointer) continue;
            ulong value = field.Kind == ContextFieldKind.PacketLength ? (ulong)packetLength
                : values is not null && values.TryGetValue(field.Name, out var given) ? given : field.Default;
            var span = bytes.AsSpan(field.Offset, field.Size);
            switch (field.Size)
            {
                case 1: span[0] = (byte)value; break;
                case 2: BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)value); break;
                case 4: BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)value); break;
                default: BinaryPrimitives.WriteUInt64LittleEndian(span, value); break;
            }
        }
        return bytes;
    }

    public override string ToString() => StructName;
}
