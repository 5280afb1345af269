using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Tests;

/// <summary>Builds the single-valued matches most tests need in one call.</summary>
internal static class Matches
{
    public static Match Simple(IpPrefix? source = null, IpPrefix? destination = null, IpProtocol? protocol = null,
        ushort? sourcePort = null, ushort? destinationPort = null) => new()
    {
        Source = source is { } s ? new AddressMatch([s]) : null,
        Destination = destination is { } d ? new AddressMatch([d]) : null,
        Protocol = protocol is { } p ? new ProtocolMatch(p) : null,
        SourcePort = sourcePort is { } sp ? PortMatch.Single(sp) : null,
        DestinationPort = destinationPort is { } dp ? PortMatch.Single(dp) : null,
    };
}
