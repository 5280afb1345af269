namespace Bpfilter.Engine.Rules;

/// <summary>Where in the kernel a chain runs.</summary>
public enum Hook
{
    /// <summary>eXpress Data Path: ingress of one interface, before the network stack, at layer 2.</summary>
    Xdp,
}

/// <summary>How an XDP program is attached.</summary>
public enum XdpMode
{
    /// <summary>In the driver (veth and most NICs). The fastest software path.</summary>
    Native,
    /// <summary>In the generic network stack: works on any device, slower.</summary>
    Generic,
}
