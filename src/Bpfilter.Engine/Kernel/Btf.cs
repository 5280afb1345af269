using System.Buffers.Binary;
using System.Text;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Reads the running kernel's BTF (/sys/kernel/btf/vmlinux) for the ids of kernel functions (kfuncs) and the offsets
/// of kernel struct fields, which differ from build to build. Parsed once, on first use: nothing reads it at import.
/// </summary>
public static class Btf
{
    public const string VmlinuxPath = "/sys/kernel/btf/vmlinux";
    private const int KindFunc = 12;
    private static readonly Lazy<IReadOnlyDictionary<string, int>> Functions = new(() => ReadFunctions(File.ReadAllBytes(VmlinuxPath)));
    private static readonly Lazy<BtfStructs> Structs = new(() => BtfStructs.Read(File.ReadAllBytes(VmlinuxPath)));

    /// <summary>The BTF type id of the FUNC named <paramref name="name"/>.</summary>
    public static int FunctionId(string name)
    {
        var functions = Parsed(Functions);
        return functions.TryGetValue(name, out var id) ? id
            : throw new BpfilterException("KfuncMissing", FailureCategory.NotImplemented,
                $"this kernel has no function {name} (not in {VmlinuxPath}); "
                + (name.Contains("_ct_", StringComparison.Ordinal) ? "connection-tracking lookups need CONFIG_NF_CONNTRACK built in with BTF (Linux 6.0 or later)" : "it needs Linux 6.4 or later"));
    }

    /// <summary>The byte offset of <paramref name="field"/> in struct <paramref name="structName"/>, looking into anonymous members.</summary>
    public static int FieldOffset(string structName, string field) =>
        Parsed(Structs).FieldOffset(structName, field)
        ?? throw new BpfilterException("KernelFieldMissing", FailureCategory.NotImplemented,
            $"this kernel's struct {structName} has no field {field} (not in {VmlinuxPath})"
            + (structName is "sk_buff" or "nf_conn" ? ": connection tracking needs CONFIG_NF_CONNTRACK" : ""));

    private static T Parsed<T>(Lazy<T> lazy)
    {
        try
        {
            return lazy.Value;
        }
        catch (IOException e)
        {
            throw new BpfilterException("BtfUnavailable", FailureCategory.ResourceUnavailable,
                $"cannot read {VmlinuxPath} ({e.Message}): netfilter programs and connection tracking need the kernel's BTF (CONFIG_DEBUG_INFO_BTF)", e);
        }
    }

    /// <summary>Walks every type record (ids from 1, in file order) and keeps the FUNC names.</summary>
    internal static IReadOnlyDictionary<string, int> ReadFunctions(ReadOnlySpan<byte> btf)
    {
        if (BinaryPrimitives.ReadUInt16LittleEndian(btf) != 0xEB9F) throw new InvalidDataException("not BTF: wrong magic");
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[4..]);
        uint typeOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[8..]);
        uint typeLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[12..]);
        uint stringOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[16..]);
        var types = btf.Slice((int)(headerLength + typeOffset), (int)typeLength);
        var strings = btf[(int)(headerLength + stringOffset)..];
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        int position = 0, id = 1;
        while (position + 12 <= types.Length)
        {
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(types[position..]);
            uint info = BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 4)..]);
            int kind = (int)((info >> 24) & 0x1f);
            int vlen = (int)(info & 0xffff);
            if (kind == KindFunc)
            {
                var name = strings[(int)nameOffset..];
                result.TryAdd(Encoding.ASCII.GetString(name[..name.IndexOf((byte)0)]), id);
            }
            position += 12 + kind switch
            {
                1 => 4,                 // INT
                3 => 12,                // ARRAY
                4 or 5 => 12 * vlen,    // STRUCT, UNION
                6 => 8 * vlen,          // ENUM
                13 => 8 * vlen,         // FUNC_PROTO
                14 => 4,                // VAR
                15 => 12 * vlen,        // DATASEC
                17 => 4,                // DECL_TAG
                19 => 12 * vlen,        // ENUM64
                _ => 0,                 // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            };
            id++;
        }
        return result;
    }
}

/// <summary>The structs and unions of a BTF blob with their members, enough to find a field's offset.</summary>
internal sealed class BtfStructs
{
    private const int KindStruct = 4, KindUnion = 5, KindTypedef = 8, KindVolatile = 9, KindConst = 10, KindRestrict = 11, KindTypeTag = 18;

    private readonly record struct TypeRecord(int Kind, string Name, int Type, (string Name, int Type, int BitOffset)[]? Members);

    private readonly List<TypeRecord> _types;
    private readonly Dictionary<string, int> _structByName;

    private BtfStructs(List<TypeRecord> types, Dictionary<string, int> structByName)
    {
        _types = types;
        _structByName = structByName;
    }

    public static BtfStructs Read(ReadOnlySpan<byte> btf)
    {
        if (BinaryPrimitives.ReadUInt16LittleEndian(btf) != 0xEB9F) throw new InvalidDataException("not BTF: wrong magic");
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[4..]);
        uint typeOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[8..]);
        uint typeLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[12..]);
        uint stringOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[16..]);
        var types = btf.Slice((int)(headerLength + typeOffset), (int)typeLength);
        var strings = btf[(int)(headerLength + stringOffset)..];
        var records = new List<TypeRecord> { default }; // ids start at 1
        var byName = new Dictionary<string, int>(StringComparer.Ordinal);
        int position = 0;
        while (position + 12 <= types.Length)
        {
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(types[position..]);
            uint info = BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 4)..]);
            int kind = (int)((info >> 24) & 0x1f);
            int vlen = (int)(info & 0xffff);
            bool bitfields = (info >> 31) != 0;
            int type = (int)BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 8)..]);
            (string, int, int)[]? members = null;
            string name = "";
            if (kind is KindStruct or KindUnion)
            {
                name = Name(strings, nameOffset);
                members = new (string, int, int)[vlen];
                for (int i = 0; i < vlen; i++)
                {
                    var member = types[(position + 12 + 12 * i)..];
                    uint offset = BinaryPrimitives.ReadUInt32LittleEndian(member[8..]);
                    members[i] = (Name(strings, BinaryPrimitives.ReadUInt32LittleEndian(member)), (int)BinaryPrimitives.ReadUInt32LittleEndian(member[4..]),
                        (int)(bitfields ? offset & 0xffffff : offset));
                }
                if (kind == KindStruct && name.Length > 0) byName.TryAdd(name, records.Count);
            }
            records.Add(new TypeRecord(kind, name, type, members));
            position += 12 + kind switch
            {
                1 => 4, 3 => 12, 4 or 5 => 12 * vlen, 6 => 8 * vlen, 13 => 8 * vlen, 14 => 4, 15 => 12 * vlen, 17 => 4, 19 => 12 * vlen,
                _ => 0,
            };
        }
        return new BtfStructs(records, byName);
    }

    private static string Name(ReadOnlySpan<byte> strings, uint offset)
    {
        var name = strings[(int)offset..];
        return Encoding.ASCII.GetString(name[..name.IndexOf((byte)0)]);
    }

    /// <summary>The byte offset of the field, or null when the struct or the field is not there (or is a bitfield).</summary>
    public int? FieldOffset(string structName, string field) =>
        _structByName.TryGetValue(structName, out var id) && Find(id, field, 0, 0) is int bits && bits % 8 == 0 ? bits / 8 : null;

    private int? Find(int id, string field, int baseBits, int depth)
    {
        if (depth > 16 || _types[id].Members is not { } members) return null;
        foreach (var (name, type, bitOffset) in members)
        {
            if (name == field) return baseBits + bitOffset;
            if (name.Length == 0 && Find(Resolve(type), field, baseBits + bitOffset, depth + 1) is int inner) return inner;
        }
        return null;
    }

    /// <summary>The type behind typedefs and qualifiers.</summary>
    private int Resolve(int id)
    {
        for (int i = 0; i < 32 && id > 0 && id < _types.Count && _types[id].Kind is KindTypedef or KindVolatile or KindConst or KindRestrict or KindTypeTag; i++)
            id = _types[id].Type;
        return id > 0 && id < _types.Count ? id : 0;
    }
}
