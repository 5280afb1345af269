using System.Runtime.ExceptionServices;
using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Runs work inside another network namespace. setns(CLONE_NEWNET) changes only the calling thread, so the work
/// runs on a thread of its own that returns to its original namespace before it ends. Only the network namespace
/// changes: the mount namespace (and so /sys/fs/bpf) stays the host's, unlike 'ip netns exec'.
/// </summary>
public static class NetworkNamespace
{
    public const string NamedDirectory = "/run/netns";

    /// <summary>A name means /run/netns/NAME (as 'ip netns' makes); an absolute path is used as it is.</summary>
    public static string ResolvePath(string nameOrPath)
    {
        if (nameOrPath.StartsWith('/')) return nameOrPath;
        // Names are checked where they enter (Rules.Names.CheckNamespace); a '/' here would escape /run/netns.
        if (nameOrPath.Contains('/') || nameOrPath is "." or "..") throw new ArgumentException($"'{nameOrPath}' is not a namespace name", nameof(nameOrPath));
        return Path.Combine(NamedDirectory, nameOrPath);
    }

    /// <summary>The namespace's identity: the inode of its nsfs file (two paths name one namespace when these match).</summary>
    public static ulong Inode(string nameOrPath)
    {
        var path = ResolvePath(nameOrPath);
        var inode = LibC.Inode(path);
        return inode != 0 ? inode : throw NotFound(nameOrPath, null);
    }

    public static bool Exists(string nameOrPath) => File.Exists(ResolvePath(nameOrPath));

    public static T Run<T>(string? nameOrPath, Func<T> work)
    {
        if (string.IsNullOrEmpty(nameOrPath)) return work();
        var path = ResolvePath(nameOrPath);
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var original = OpenNamespace("/proc/thread-self/ns/net", nameOrPath);
                using var target = OpenNamespace(path, nameOrPath);
                if (LibC.Setns(target.Value, LibC.CloneNewNet) != 0)
                    throw new KernelException($"enter network namespace {nameOrPath}", LibC.LastError);
                try
                {
                    result = work();
                }
                finally
                {
                    if (LibC.Setns(original.Value, LibC.CloneNewNet) != 0)
                        throw new KernelException("return to the original network namespace", LibC.LastError);
                }
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        }) { IsBackground = true, Name = "bpfilter-netns" };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    public static void Run(string? nameOrPath, Action work) => Run(nameOrPath, () => { work(); return 0; });

    private static FileDescriptor OpenNamespace(string path, string name)
    {
        int fd = LibC.Open(path, LibC.ORdOnly | LibC.OCloexec, 0);
        if (fd < 0)
        {
            int errno = LibC.LastError;
            if (errno == 2) throw NotFound(name, null);
            throw new KernelException($"open network namespace {path}", errno);
        }
        return new FileDescriptor(fd);
    }

    private static BpfilterException NotFound(string name, Exception? inner) =>
        new("NamespaceNotFound", FailureCategory.ObjectNotFound,
            $"network namespace '{name}' does not exist ({ResolvePath(name)} is missing; 'ip netns list' shows the named ones)", inner);
}
