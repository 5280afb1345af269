using Bpfilter.Engine.Kernel;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// Three namespaces of the test's own: a client (10.203.1.1) and a server (10.203.2.1) on two veth pairs,
/// with a router between them (10.203.1.2 / 10.203.2.2) that forwards: for the FORWARD hook.
/// </summary>
public sealed class RoutedSandbox : IDisposable
{
    public RoutedSandbox()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        Client = $"bpft-{id}-c";
        Router = $"bpft-{id}-r";
        Server = $"bpft-{id}-s";
        try
        {
            foreach (var ns in new[] { Client, Router, Server }) Sandbox.Ip("netns", "add", ns);
            Sandbox.Ip("link", "add", $"bpft{id}a", "netns", Client, "type", "veth", "peer", "name", $"bpft{id}b", "netns", Router);
            Sandbox.Ip("link", "add", $"bpft{id}c", "netns", Router, "type", "veth", "peer", "name", $"bpft{id}d", "netns", Server);
            Sandbox.Ip("-n", Client, "addr", "add", "10.203.1.1/24", "dev", $"bpft{id}a");
            Sandbox.Ip("-n", Router, "addr", "add", "10.203.1.2/24", "dev", $"bpft{id}b");
            Sandbox.Ip("-n", Router, "addr", "add", "10.203.2.2/24", "dev", $"bpft{id}c");
            Sandbox.Ip("-n", Server, "addr", "add", "10.203.2.1/24", "dev", $"bpft{id}d");
            foreach (var (ns, dev) in new[] { (Client, $"bpft{id}a"), (Router, $"bpft{id}b"), (Router, $"bpft{id}c"), (Server, $"bpft{id}d") })
                Sandbox.Ip("-n", ns, "link", "set", dev, "up");
            Sandbox.Ip("-n", Client, "route", "add", "default", "via", "10.203.1.2");
            Sandbox.Ip("-n", Server, "route", "add", "default", "via", "10.203.2.2");
            Sandbox.Sysctl(Router, "net.ipv4.ip_forward", "1");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Client { get; }
    public string Router { get; }
    public string Server { get; }

    public void Dispose()
    {
        foreach (var ns in new[] { Client, Router, Server })
            if (File.Exists($"/run/netns/{ns}")) Sandbox.Ip("netns", "delete", ns);
    }
}
