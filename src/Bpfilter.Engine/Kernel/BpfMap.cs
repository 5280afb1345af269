using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Kernel;

/// <summary>A kernel map, owned by this process through its fd (and by any pin).</summary>
public sealed class BpfMap : IDisposable
{
    private BpfMap(FileDescriptor fd, MapType type, uint valueSize)
    {
        Fd = fd;
        Type = type;
        ValueSize = valueSize;
    }

    public FileDescriptor Fd { get; }
    public MapType Type { get; }
    public uint ValueSize { get; }

    public static BpfMap Create(MapSpec spec) =>
        new(Bpf.MapCreate((uint)spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, spec.Flags, spec.Name), spec.Type, spec.ValueSize);

    /// <summary>
    /// A map holding <paramref name="entries"/>, frozen so that from now on only programs can change it (the
    /// optimizer's tables: what a program classifies by is fixed when it loads). Written in one batch where the map
    /// type allows it.
    /// </summary>
    public static BpfMap CreateFrozen(MapSpec spec, IReadOnlyList<KeyValuePair<byte[], byte[]>> entries)
    {
        var map = Create(spec);
        try
        {
            if (entries.Count > 0)
            {
                var keys = new byte[entries.Count * spec.KeySize];
                var values = new byte[entries.Count * spec.ValueSize];
                for (int i = 0; i < entries.Count; i++)
                {
                    entries[i].Key.CopyTo(keys, i * (int)spec.KeySize);
                    entries[i].Value.CopyTo(values, i * (int)spec.ValueSize);
                }
                if (!Bpf.MapUpdateBatch(map.Fd, keys, values, (uint)entries.Count))
                    foreach (var (key, value) in entries) map.Update(key, value);
            }
            map.Freeze();
            return map;
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>Opens a pinned map, or returns null when nothing is pinned at <paramref name="path"/>.</summary>
    public static BpfMap? OpenPinned(string path, bool readOnly = false)
    {
        var fd = Bpf.ObjGet(path, readOnly);
        if (fd is null) return null;
        Span<byte> info = stackalloc byte[104]; // sizeof(struct bpf_map_info): type@0, value_size@12
        info.Clear();
        Bpf.ObjGetInfo(fd, info);
        return new BpfMap(fd, (MapType)BinaryPrimitives.ReadUInt32LittleEndian(info), BinaryPrimitives.ReadUInt32LittleEndian(info[12..]));
    }

    public void Pin(string path) => Bpf.ObjPin(Fd, path);

    public bool Lookup(ReadOnlySpan<byte> key, Span<byte> value) => Bpf.MapLookup(Fd, key, value);

    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => Bpf.MapUpdate(Fd, key, value);

    /// <summary>Deletes <paramref name="key"/>; false when it was not there.</summary>
    public bool Delete(ReadOnlySpan<byte> key) => Bpf.MapDelete(Fd, key);

    /// <summary>Every key of the map, in the kernel's order.</summary>
    public List<byte[]> Keys(int keySize)
    {
        var keys = new List<byte[]>();
        var current = new byte[keySize];
        var next = new byte[keySize];
        bool first = true;
        while (Bpf.MapGetNextKey(Fd, current, first, next))
        {
            keys.Add(next.ToArray());
            (current, next) = (next, current);
            first = false;
        }
        return keys;
    }

    /// <summary>From now on user space can only read the map.</summary>
    public void Freeze() => Bpf.MapFreeze(Fd);

    /// <summary>Per-CPU maps: the value of every possible CPU, each at a stride of value_size rounded up to 8.</summary>
    public byte[][] LookupPerCpu(uint key)
    {
        int stride = (int)((ValueSize + 7) & ~7u);
        var buffer = new byte[stride * PossibleCpus.Count];
        Span<byte> keyBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(keyBytes, key);
        if (!Lookup(keyBytes, buffer)) throw new KernelException($"read per-CPU slot {key}", 2);
        return Enumerable.Range(0, PossibleCpus.Count).Select(cpu => buffer.AsSpan(cpu * stride, (int)ValueSize).ToArray()).ToArray();
    }

    public void Dispose() => Fd.Dispose();
}
