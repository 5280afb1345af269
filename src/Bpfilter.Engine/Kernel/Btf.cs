using System.Buffers.Binary;
using System.Text;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Reads the running kernel's BTF (/sys/kernel/btf/vmlinux) for the ids of kernel functions (kfuncs), which
/// differ from build to build. Parsed once, on first use: nothing reads it at import.
/// </summary>
public static class Btf
{
    public const string VmlinuxPath = "/sys/kernel/btf/vmlinux";
    private const int KindFunc = 12;
    private const int KindStruct = 4, KindUnion = 5;
    private static readonly Lazy<IReadOnlyDictionary<string, int>> Functions = new(() => ReadFunctions(Vmlinux()));
    private static readonly Lazy<IReadOnlyDictionary<(string, string), int>> Members = new(() => ReadMembers(Vmlinux()));

    private static byte[] Vmlinux()
    {
        try
        {
            return File.ReadAllBytes(VmlinuxPath);
        }
        catch (IOException e)
        {
            throw new BpfilterException("BtfUnavailable", FailureCategory.ResourceUnavailable,
                $"cannot read {VmlinuxPath} ({e.Message}): netfilter programs need the kernel's BTF (CONFIG_DEBUG_INFO_BTF)", e);
        }
    }

    /// <summary>
    /// The byte offset of <paramref name="member"/> in the kernel's struct <paramref name="structName"/>, looking into
    /// anonymous structs and unions as C does (sk_buff's mark sits in one). Kernel structs change between builds.
    /// </summary>
    public static int MemberOffset(string structName, string member) =>
        Members.Value.TryGetValue((structName, member), out var offset) ? offset
            : throw new BpfilterException("BtfMemberMissing", FailureCategory.NotImplemented,
                $"this kernel's struct {structName} has no member {member} (not in {VmlinuxPath})");

    /// <summary>The BTF type id of the FUNC named <paramref name="name"/>.</summary>
    public static int FunctionId(string name)
    {
        return Functions.Value.TryGetValue(name, out var id) ? id
            : throw new BpfilterException("KfuncMissing", FailureCategory.NotImplemented,
                $"this kernel has no function {name} (not in {VmlinuxPath}); "
                + (name.Contains("_ct_", StringComparison.Ordinal) ? "connection-tracking lookups need CONFIG_NF_CONNTRACK built in with BTF" : "it needs Linux 6.4 or later"));
    }

    /// <summary>Every (struct, member) byte offset of the named structs, anonymous members' members included.</summary>
    internal static IReadOnlyDictionary<(string, string), int> ReadMembers(ReadOnlySpan<byte> btf)
    {
        var types = ReadTypes(btf);
        var result = new Dictionary<(string, string), int>();
        void Add(string owner, int type, int baseBits, int depth)
        {
            // Anonymous members are structs or unions, possibly behind a typedef or a qualifier (kinds 8, 9, 10).
            for (int hops = 0; hops < 8 && type > 0 && type < types.Count && types[type].Kind is 8 or 9 or 10; hops++) type = types[type].Type;
            if (depth > 8 || type <= 0 || type >= types.Count) return;
            foreach (var (name, memberType, bitOffset) in types[type].Members)
            {
                if (name.Length > 0) result.TryAdd((owner, name), (baseBits + bitOffset) / 8);
                else Add(owner, memberType, baseBits + bitOffset, depth + 1);
            }
        }
        for (int id = 1; id < types.Count; id++)
        {
            if (types[id].Kind == KindStruct && types[id].Name.Length > 0) Add(types[id].Name, id, 0, 0);
        }
        return result;
    }

    /// <summary>Every type record, by id (index 0 is the void type): kind, name, the type it refers to, and struct or union members.</summary>
    private static List<(int Kind, string Name, int Type, (string Name, int Type, int BitOffset)[] Members)> ReadTypes(ReadOnlySpan<byte> btf)
    {
        if (BinaryPrimitives.ReadUInt16LittleEndian(btf) != 0xEB9F) throw new InvalidDataException("not BTF: wrong magic");
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[4..]);
        uint typeOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[8..]);
        uint typeLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[12..]);
        var types = btf.Slice((int)(headerLength + typeOffset), (int)typeLength);
        var result = new List<(int, string, int, (string, int, int)[])> { (0, "", 0, []) };
        int position = 0;
        while (position + 12 <= types.Length)
        {
            uint info = BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 4)..]);
            int kind = (int)((info >> 24) & 0x1f);
            int vlen = (int)(info & 0xffff);
            bool kindFlag = (info >> 31) != 0;
            var members = new (string, int, int)[kind is KindStruct or KindUnion ? vlen : 0];
            for (int i = 0; i < members.Length; i++)
            {
                var m = types.Slice(position + 12 + 12 * i, 12);
                int bits = (int)BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
                members[i] = (Name(btf, BinaryPrimitives.ReadUInt32LittleEndian(m)), (int)BinaryPrimitives.ReadUInt32LittleEndian(m[4..]), kindFlag ? bits & 0xffffff : bits);
            }
            result.Add((kind, Name(btf, BinaryPrimitives.ReadUInt32LittleEndian(types[position..])), (int)BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 8)..]), members));
            position += 12 + ExtraBytes(kind, vlen);
        }
        return result;
    }

    private static int ExtraBytes(int kind, int vlen) => kind switch
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

    private static string Name(ReadOnlySpan<byte> btf, uint offset)
    {
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[4..]);
        uint stringOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[16..]);
        var name = btf[(int)(headerLength + stringOffset + offset)..];
        return Encoding.ASCII.GetString(name[..name.IndexOf((byte)0)]);
    }

    /// <summary>The FUNC types by name (ids from 1, in file order).</summary>
    internal static IReadOnlyDictionary<string, int> ReadFunctions(ReadOnlySpan<byte> btf)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        var types = ReadTypes(btf);
        for (int id = 1; id < types.Count; id++)
        {
            if (types[id].Kind == KindFunc) result.TryAdd(types[id].Name, id);
        }
        return result;
    }
}
