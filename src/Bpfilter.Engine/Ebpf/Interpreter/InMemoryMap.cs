using System.Buffers.Binary;

namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>
/// A BPF map held in process memory, for the interpreter. It has two faces, as a kernel map has: the program's
/// (lookups that return a pointer to the value, updates and deletes that return 0 or −errno) and user space's
/// (the bpf() syscall's semantics: per-CPU values come as one buffer of round_up(value_size, 8) bytes per CPU).
/// Creation applies the kernel's rules for the map type, so a spec the kernel would refuse is refused here too.
/// </summary>
public abstract class InMemoryMap
{
    /// <summary>enum bpf_map_type BPF_MAP_TYPE_RINGBUF, which <see cref="MapType"/> does not name yet.</summary>
    public const MapType RingBufferType = (MapType)27;

    /// <summary>enum bpf_map_type BPF_MAP_TYPE_PERCPU_HASH.</summary>
    public const MapType PerCpuHashType = (MapType)5;

    internal const ulong Any = 0, NoExist = 1, Exist = 2;
    internal const int ENOENT = 2, E2BIG = 7, EAGAIN = 11, EEXIST = 17, EINVAL = 22, ENOSPC = 28;

    protected InMemoryMap(MapSpec spec, int cpuCount)
    {
        Spec = spec;
        CpuCount = cpuCount;
    }

    public MapSpec Spec { get; }

    /// <summary>How many CPUs per-CPU maps hold a value for.</summary>
    public int CpuCount { get; }

    public bool IsPerCpu => Spec.Type is MapType.PerCpuArray or PerCpuHashType;

    /// <summary>The size of a user-space value buffer: value_size, or round_up(value_size, 8) × CPUs for per-CPU maps.</summary>
    public int UserValueSize => IsPerCpu ? Stride * CpuCount : (int)Spec.ValueSize;

    internal int Stride => (int)((Spec.ValueSize + 7) & ~7u);

    /// <summary>Creates an empty map of <paramref name="spec"/>'s type, or refuses the spec as BPF_MAP_CREATE would.</summary>
    public static InMemoryMap Create(MapSpec spec, int cpuCount = 1)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (cpuCount < 1) throw new ArgumentOutOfRangeException(nameof(cpuCount), cpuCount, "a map needs at least one CPU");
        if (spec.MaxEntries == 0) throw Invalid(spec, "max_entries is 0");
        return spec.Type switch
        {
            MapType.Array or MapType.PerCpuArray => new ArrayMap(spec, cpuCount),
            MapType.Hash or PerCpuHashType => new HashMap(spec, cpuCount),
            MapType.LpmTrie => new LpmTrieMap(spec, cpuCount),
            RingBufferType => new RingBufferMap(spec, cpuCount),
            _ => throw new BpfilterException("InterpreterUnsupported", FailureCategory.NotImplemented,
                $"map {spec.Name}: the interpreter has no in-memory map of type {spec.Type}"),
        };
    }

    /// <summary>One empty map for each map the program refers to.</summary>
    public static IReadOnlyDictionary<MapSpec, InMemoryMap> CreateAll(EbpfProgram program, int cpuCount = 1) =>
        program.Maps.ToDictionary(m => m, m => Create(m, cpuCount));

    // --- user space ---------------------------------------------------------------------------------------

    /// <summary>BPF_MAP_LOOKUP_ELEM: copies the value into <paramref name="value"/> (<see cref="UserValueSize"/> bytes); false for ENOENT.</summary>
    public abstract bool Lookup(ReadOnlySpan<byte> key, Span<byte> value);

    /// <summary>BPF_MAP_UPDATE_ELEM with BPF_ANY (0), BPF_NOEXIST (1) or BPF_EXIST (2): 0, or the errno the kernel gives.</summary>
    public abstract int Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = Any);

    /// <summary>BPF_MAP_DELETE_ELEM: 0, or the errno the kernel gives.</summary>
    public abstract int Delete(ReadOnlySpan<byte> key);

    /// <summary>The keys in the order BPF_MAP_GET_NEXT_KEY would give them.</summary>
    public abstract IReadOnlyList<byte[]> Keys();

    /// <summary>A per-CPU map's value for every CPU, like <c>BpfMap.LookupPerCpu</c>; a plain map gives one entry.</summary>
    public byte[][] LookupPerCpu(uint key)
    {
        Span<byte> keyBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(keyBytes, key);
        var buffer = new byte[UserValueSize];
        if (!Lookup(keyBytes[..(int)Math.Min(4u, Spec.KeySize)], buffer))
            throw new BpfilterException("MapKeyNotFound", FailureCategory.ObjectNotFound, $"map {Spec.Name} has no element {key}");
        if (!IsPerCpu) return [buffer];
        return Enumerable.Range(0, CpuCount).Select(cpu => buffer.AsSpan(cpu * Stride, (int)Spec.ValueSize).ToArray()).ToArray();
    }

    // --- the program ------------------------------------------------------------------------------------------

    /// <summary>bpf_map_lookup_elem: the value's own bytes (the running CPU's copy), or null.</summary>
    internal abstract byte[]? ProgramLookup(ReadOnlySpan<byte> key, int cpu);

    /// <summary>bpf_map_update_elem: 0 or −errno.</summary>
    internal abstract long ProgramUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags, int cpu);

    /// <summary>bpf_map_delete_elem: 0 or −errno.</summary>
    internal abstract long ProgramDelete(ReadOnlySpan<byte> key);

    internal static BpfilterException Invalid(MapSpec spec, string why) =>
        new("MapSpecInvalid", FailureCategory.InvalidArgument, $"map {spec.Name} ({spec.Type}): {why}; the kernel would refuse it with EINVAL");

    /// <summary>Per-CPU values from user space: CPU n's value at n × stride.</summary>
    protected void SplitPerCpu(ReadOnlySpan<byte> value, byte[][] into)
    {
        for (int cpu = 0; cpu < CpuCount; cpu++) value.Slice(cpu * Stride, (int)Spec.ValueSize).CopyTo(into[cpu]);
    }

    protected void JoinPerCpu(byte[][] values, Span<byte> into)
    {
        into.Clear();
        for (int cpu = 0; cpu < CpuCount; cpu++) values[cpu].CopyTo(into[(cpu * Stride)..]);
    }

    protected byte[][] NewValues() => Enumerable.Range(0, IsPerCpu ? CpuCount : 1).Select(_ => new byte[Spec.ValueSize]).ToArray();

    public override string ToString() => $"{Spec.Name} ({Spec.Type})";
}

/// <summary>BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY: u32 keys 0..max_entries−1, every element always present and zeroed at creation.</summary>
internal sealed class ArrayMap : InMemoryMap
{
    private readonly byte[][][] _elements; // [key][cpu] → value

    public ArrayMap(MapSpec spec, int cpuCount) : base(spec, cpuCount)
    {
        if (spec.KeySize != 4) throw Invalid(spec, $"array keys must be 4 bytes, not {spec.KeySize}");
        if (spec.ValueSize == 0) throw Invalid(spec, "value_size is 0");
        if ((ulong)spec.MaxEntries * spec.ValueSize > 1u << 30) throw Invalid(spec, "the array is larger than the interpreter allows (1 GiB)");
        _elements = new byte[spec.MaxEntries][][];
        for (int i = 0; i < _elements.Length; i++) _elements[i] = NewValues();
    }

    private bool Index(ReadOnlySpan<byte> key, out uint index)
    {
        index = key.Length == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(key) : uint.MaxValue;
        return index < Spec.MaxEntries;
    }

    public override bool Lookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        if (!Index(key, out var i)) return false;
        if (IsPerCpu) JoinPerCpu(_elements[i], value);
        else _elements[i][0].CopyTo(value);
        return true;
    }

    public override int Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = Any)
    {
        if (flags > Exist) return EINVAL;
        if (!Index(key, out var i)) return E2BIG;
        if (flags == NoExist) return EEXIST;
        if (IsPerCpu) SplitPerCpu(value, _elements[i]);
        else value[..(int)Spec.ValueSize].CopyTo(_elements[i][0]);
        return 0;
    }

    public override int Delete(ReadOnlySpan<byte> key) => EINVAL;

    public override IReadOnlyList<byte[]> Keys() =>
        Enumerable.Range(0, (int)Spec.MaxEntries).Select(i => BitConverter.GetBytes((uint)i)).ToArray();

    internal override byte[]? ProgramLookup(ReadOnlySpan<byte> key, int cpu) =>
        Index(key, out var i) ? _elements[i][IsPerCpu ? cpu : 0] : null;

    internal override long ProgramUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags, int cpu)
    {
        if (flags > Exist) return -EINVAL;
        if (!Index(key, out var i)) return -E2BIG;
        if (flags == NoExist) return -EEXIST;
        value.CopyTo(_elements[i][IsPerCpu ? cpu : 0]);
        return 0;
    }

    internal override long ProgramDelete(ReadOnlySpan<byte> key) => -EINVAL;
}

/// <summary>BPF_MAP_TYPE_HASH and PERCPU_HASH: at most max_entries keys of key_size bytes, compared byte for byte.</summary>
internal sealed class HashMap : InMemoryMap
{
    private readonly Dictionary<string, (byte[] Key, byte[][] Values)> _elements = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();

    public HashMap(MapSpec spec, int cpuCount) : base(spec, cpuCount)
    {
        if (spec.KeySize == 0 || spec.ValueSize == 0) throw Invalid(spec, "key_size and value_size must not be 0");
    }

    private string? Name(ReadOnlySpan<byte> key) => key.Length == Spec.KeySize ? Convert.ToHexString(key) : null;

    public override bool Lookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        if (Name(key) is not { } name || !_elements.TryGetValue(name, out var element)) return false;
        if (IsPerCpu) JoinPerCpu(element.Values, value);
        else element.Values[0].CopyTo(value);
        return true;
    }

    public override int Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = Any)
    {
        var values = NewValues();
        if (IsPerCpu) SplitPerCpu(value, values);
        else value[..(int)Spec.ValueSize].CopyTo(values[0]);
        return Put(key, values, flags, overwriteAllCpus: true, cpu: 0);
    }

    private int Put(ReadOnlySpan<byte> key, byte[][] values, ulong flags, bool overwriteAllCpus, int cpu)
    {
        if (flags > Exist) return EINVAL;
        if (Name(key) is not { } name) return EINVAL;
        bool exists = _elements.TryGetValue(name, out var element);
        if (exists && flags == NoExist) return EEXIST;
        if (!exists && flags == Exist) return ENOENT;
        if (exists)
        {
            // In place: the kernel swaps in a new element, but a value's bytes are all a program can observe.
            if (overwriteAllCpus) for (int c = 0; c < values.Length; c++) values[c].CopyTo(element.Values[c]);
            else values[0].CopyTo(element.Values[IsPerCpu ? cpu : 0]);
            return 0;
        }
        if (_elements.Count >= Spec.MaxEntries) return E2BIG;
        byte[][] stored;
        if (overwriteAllCpus) stored = values;
        else
        {
            stored = NewValues();
            values[0].CopyTo(stored[IsPerCpu ? cpu : 0]);
        }
        _elements[name] = (key.ToArray(), stored);
        _order.Add(name);
        return 0;
    }

    public override int Delete(ReadOnlySpan<byte> key)
    {
        if (Name(key) is not { } name || !_elements.Remove(name)) return ENOENT;
        _order.Remove(name);
        return 0;
    }

    public override IReadOnlyList<byte[]> Keys() => _order.Select(n => _elements[n].Key.ToArray()).ToArray();

    internal override byte[]? ProgramLookup(ReadOnlySpan<byte> key, int cpu) =>
        Name(key) is { } name && _elements.TryGetValue(name, out var element) ? element.Values[IsPerCpu ? cpu : 0] : null;

    internal override long ProgramUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags, int cpu) =>
        -Put(key, [value.ToArray()], flags, overwriteAllCpus: false, cpu);

    internal override long ProgramDelete(ReadOnlySpan<byte> key) => -Delete(key);
}

/// <summary>
/// BPF_MAP_TYPE_LPM_TRIE: keys are {u32 prefixlen (host order); u8 data[key_size − 4] (network order)}; a lookup
/// finds the longest stored prefix that contains the key's data. Host bits of a stored prefix are ignored, as the
/// kernel ignores them.
/// </summary>
internal sealed class LpmTrieMap : InMemoryMap
{
    private const uint NoPrealloc = 1;
    private readonly Dictionary<string, (byte[] Key, byte[] Value)> _elements = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();
    private readonly int _maxPrefix;

    public LpmTrieMap(MapSpec spec, int cpuCount) : base(spec, cpuCount)
    {
        if ((spec.Flags & NoPrealloc) == 0) throw Invalid(spec, "an LPM trie needs BPF_F_NO_PREALLOC (flags 1)");
        if (spec.KeySize is < 5 or > 4 + 256) throw Invalid(spec, $"key_size {spec.KeySize} is not 4 + 1..256 data bytes");
        if (spec.ValueSize == 0) throw Invalid(spec, "value_size is 0");
        _maxPrefix = (int)(spec.KeySize - 4) * 8;
    }

    /// <summary>The element name of a prefix: its length and its data with the host bits cleared.</summary>
    private static string Name(int prefix, ReadOnlySpan<byte> data)
    {
        Span<byte> masked = stackalloc byte[data.Length];
        data.CopyTo(masked);
        for (int bit = prefix; bit < masked.Length * 8; bit++) masked[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        return prefix.ToString(System.Globalization.CultureInfo.InvariantCulture) + "/" + Convert.ToHexString(masked);
    }

    private bool Parse(ReadOnlySpan<byte> key, out int prefix, out ReadOnlySpan<byte> data)
    {
        data = default;
        prefix = -1;
        if (key.Length != Spec.KeySize) return false;
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(key);
        if (length > _maxPrefix) return false;
        prefix = (int)length;
        data = key[4..];
        return true;
    }

    private byte[]? Find(ReadOnlySpan<byte> key)
    {
        if (!Parse(key, out var prefix, out var data)) return null;
        for (int length = prefix; length >= 0; length--)
        {
            if (_elements.TryGetValue(Name(length, data), out var element)) return element.Value;
        }
        return null;
    }

    public override bool Lookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        if (Find(key) is not { } found) return false;
        found.CopyTo(value);
        return true;
    }

    public override int Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = Any)
    {
        if (flags > Exist) return EINVAL;
        if (!Parse(key, out var prefix, out var data)) return EINVAL;
        var name = Name(prefix, data);
        bool exists = _elements.TryGetValue(name, out var element);
        if (exists && flags == NoExist) return EEXIST;
        if (!exists && flags == Exist) return ENOENT;
        if (exists)
        {
            value[..(int)Spec.ValueSize].CopyTo(element.Value);
            return 0;
        }
        if (_elements.Count >= Spec.MaxEntries) return ENOSPC;
        _elements[name] = (key.ToArray(), value[..(int)Spec.ValueSize].ToArray());
        _order.Add(name);
        return 0;
    }

    public override int Delete(ReadOnlySpan<byte> key)
    {
        if (!Parse(key, out var prefix, out var data)) return EINVAL;
        var name = Name(prefix, data);
        if (!_elements.Remove(name)) return ENOENT;
        _order.Remove(name);
        return 0;
    }

    public override IReadOnlyList<byte[]> Keys() => _order.Select(n => _elements[n].Key.ToArray()).ToArray();

    internal override byte[]? ProgramLookup(ReadOnlySpan<byte> key, int cpu) => Find(key);

    internal override long ProgramUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags, int cpu) => -Update(key, value, flags);

    internal override long ProgramDelete(ReadOnlySpan<byte> key) => -Delete(key);
}

/// <summary>One record reserved in a ring buffer by bpf_ringbuf_reserve, until bpf_ringbuf_submit or _discard.</summary>
internal sealed class RingBufferReservation(RingBufferMap map, byte[] data)
{
    public RingBufferMap Map { get; } = map;
    public byte[] Data { get; } = data;
    public bool Done { get; set; }
}

/// <summary>
/// BPF_MAP_TYPE_RINGBUF: max_entries bytes (a power of 2, a multiple of the page size) of records, each taking an
/// 8-byte header and its data rounded up to 8. Programs write with bpf_ringbuf_output or reserve/submit; user space
/// reads with <see cref="Consume"/>. When the records do not fit, output fails as the kernel's does.
/// </summary>
public sealed class RingBufferMap : InMemoryMap
{
    private readonly List<(RingBufferReservation Record, bool Committed)> _records = new();
    private long _used;

    internal RingBufferMap(MapSpec spec, int cpuCount) : base(spec, cpuCount)
    {
        if (spec.KeySize != 0 || spec.ValueSize != 0) throw Invalid(spec, "a ring buffer has key_size and value_size 0");
        if (spec.MaxEntries < 4096 || (spec.MaxEntries & (spec.MaxEntries - 1)) != 0 || spec.MaxEntries % 4096 != 0)
            throw Invalid(spec, $"max_entries {spec.MaxEntries} is not a power of 2 and a multiple of the page size");
    }

    private static long Footprint(int size) => 8 + ((size + 7) & ~7);

    internal RingBufferReservation? Reserve(int size)
    {
        if (size < 0 || _used + Footprint(size) > Spec.MaxEntries) return null;
        var record = new RingBufferReservation(this, new byte[size]);
        _used += Footprint(size);
        _records.Add((record, false));
        return record;
    }

    internal void Commit(RingBufferReservation record, bool keep)
    {
        record.Done = true;
        int index = _records.FindIndex(r => ReferenceEquals(r.Record, record));
        if (keep) _records[index] = (record, true);
        else
        {
            _records.RemoveAt(index);
            _used -= Footprint(record.Data.Length);
        }
    }

    /// <summary>Takes the records submitted so far, in the order they were reserved (as a consumer reads them).</summary>
    public IReadOnlyList<byte[]> Consume()
    {
        var taken = new List<byte[]>();
        while (_records.Count > 0 && _records[0].Committed)
        {
            taken.Add(_records[0].Record.Data);
            _used -= Footprint(_records[0].Record.Data.Length);
            _records.RemoveAt(0);
        }
        return taken;
    }

    public override bool Lookup(ReadOnlySpan<byte> key, Span<byte> value) => false;
    public override int Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = Any) => EINVAL;
    public override int Delete(ReadOnlySpan<byte> key) => EINVAL;
    public override IReadOnlyList<byte[]> Keys() => [];
    internal override byte[]? ProgramLookup(ReadOnlySpan<byte> key, int cpu) => null;
    internal override long ProgramUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags, int cpu) => -EINVAL;
    internal override long ProgramDelete(ReadOnlySpan<byte> key) => -EINVAL;
}
