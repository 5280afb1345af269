namespace Bpfilter.Engine.Compiler.Optimizer;

/// <summary>How the classifier looks a field's value up.</summary>
internal enum FieldKind
{
    /// <summary>A field of few possible values (at most <see cref="ClassifiedField.Domain"/>): an array indexed by the value.</summary>
    Small,

    /// <summary>A 32-bit field compared only for equality (interfaces, marks): a hash of the values rules name.</summary>
    Exact,

    /// <summary>A source or destination address, its four record words read as one 128-bit number: a hash or an LPM trie.</summary>
    Address,
}

/// <summary>
/// A packet record field the classifier can look up. Guard fields (family, protocol, whether ports were read,
/// fragment) have so few values that rules sharing them are grouped by them and tested with one compare each; the
/// rest are looked up. There is one instance per field, compared by reference.
/// </summary>
internal sealed class ClassifiedField(string code, short offset, FieldKind kind, uint domain, bool guard)
{
    /// <summary>Two letters for map names.</summary>
    public string Code { get; } = code;
    public short Offset { get; } = offset;
    public FieldKind Kind { get; } = kind;

    /// <summary>Small fields: how many values the record can hold there (the array's size).</summary>
    public uint Domain { get; } = domain;
    public bool Guard { get; } = guard;

    public static readonly ClassifiedField Family = new("fa", PacketRecord.Family, FieldKind.Small, 8, true);
    public static readonly ClassifiedField Protocol = new("pr", PacketRecord.Protocol, FieldKind.Small, 256, true);
    public static readonly ClassifiedField HasTransport = new("ht", PacketRecord.HasTransport, FieldKind.Small, 2, true);
    public static readonly ClassifiedField Fragment = new("fr", PacketRecord.Fragment, FieldKind.Small, 3, true);
    public static readonly ClassifiedField SourcePort = new("sp", PacketRecord.SourcePort, FieldKind.Small, 65536, false);
    public static readonly ClassifiedField DestinationPort = new("dp", PacketRecord.DestinationPort, FieldKind.Small, 65536, false);
    public static readonly ClassifiedField TcpFlags = new("tf", PacketRecord.TcpFlags, FieldKind.Small, 256, false);
    public static readonly ClassifiedField IcmpType = new("it", PacketRecord.IcmpType, FieldKind.Small, 256, false);
    public static readonly ClassifiedField IcmpCode = new("ic", PacketRecord.IcmpCode, FieldKind.Small, 256, false);
    public static readonly ClassifiedField Ttl = new("tl", PacketRecord.Ttl, FieldKind.Small, 256, false);
    public static readonly ClassifiedField Dscp = new("ds", PacketRecord.Dscp, FieldKind.Small, 64, false);
    public static readonly ClassifiedField Length = new("ln", PacketRecord.Length, FieldKind.Small, 65536 + 40, false); // IPv6: payload length + 40
    public static readonly ClassifiedField InInterface = new("ii", PacketRecord.InInterface, FieldKind.Exact, 0, false);
    public static readonly ClassifiedField OutInterface = new("oi", PacketRecord.OutInterface, FieldKind.Exact, 0, false);
    public static readonly ClassifiedField Mark = new("mk", PacketRecord.Mark, FieldKind.Exact, 0, false);
    public static readonly ClassifiedField Source = new("sa", PacketRecord.SourceAddress(0), FieldKind.Address, 0, false);
    public static readonly ClassifiedField Destination = new("da", PacketRecord.DestinationAddress(0), FieldKind.Address, 0, false);

    private static readonly ClassifiedField[] All =
        [Family, Protocol, HasTransport, Fragment, SourcePort, DestinationPort, TcpFlags, IcmpType, IcmpCode, Ttl, Dscp, Length,
         InInterface, OutInterface, Mark, Source, Destination];

    /// <summary>The field a record offset belongs to (any of an address's four words gives the address); null for none.</summary>
    public static ClassifiedField? At(short offset)
    {
        for (int word = 0; word < 4; word++)
        {
            if (offset == PacketRecord.SourceAddress(word)) return Source;
            if (offset == PacketRecord.DestinationAddress(word)) return Destination;
        }
        return All.FirstOrDefault(f => f.Offset == offset && f.Kind != FieldKind.Address);
    }

    /// <summary>Which of the address's words (0–3) a record offset is.</summary>
    public int WordAt(short offset) => (Offset - offset) / 8;

    /// <summary>The order fields are looked up and keys are laid out in.</summary>
    public int Order => Array.IndexOf(All, this);
}
